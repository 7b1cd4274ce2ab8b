"""Series of sample images from the phantoms: CT and MR slice stacks, JPEG radiographs.

Each function returns a ``SeriesPlan``: how many files a series has and a generator that builds
their datasets one by one, so a progress bar can count and memory stays small.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydicom import Dataset

from . import phantom
from .dataset import SeriesSpec, base_dataset, sample_uid, set_jpeg_pixels, set_native_pixels

Vector = tuple[float, float, float]
AXIAL: tuple[Vector, Vector] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
SAGITTAL: tuple[Vector, Vector] = ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0))
CORONAL: tuple[Vector, Vector] = ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0))


@dataclass(frozen=True)
class SeriesPlan:
    folder: str  # relative to the output folder
    count: int
    instances: Callable[[], Iterator[Dataset]]


@dataclass(frozen=True)
class Stack:
    """Parallel slices: ``count`` planes ``step`` mm apart around ``center``."""

    center: Vector
    orientation: tuple[Vector, Vector]  # (row direction, column direction)
    rows: int
    columns: int
    spacing: float  # square pixels, mm
    count: int
    step: float
    thickness: float

    @property
    def normal(self) -> NDArray[np.float64]:
        return np.cross(np.asarray(self.orientation[0]), np.asarray(self.orientation[1]))

    def position(self, index: int) -> Vector:
        """ImagePositionPatient (centre of the first pixel) of slice ``index``."""
        row, column = (np.asarray(v) for v in self.orientation)
        offset = (index - (self.count - 1) / 2.0) * self.step
        corner = (
            np.asarray(self.center)
            + offset * self.normal
            - row * (self.columns - 1) / 2.0 * self.spacing
            - column * (self.rows - 1) / 2.0 * self.spacing
        )
        return (float(corner[0]), float(corner[1]), float(corner[2]))

    def points(self, index: int) -> phantom.Points:
        return phantom.plane(
            self.position(index), *self.orientation, self.rows, self.columns, (self.spacing, self.spacing)
        )


@dataclass(frozen=True)
class Windows:
    centers: tuple[float, ...]
    widths: tuple[float, ...]
    explanations: tuple[str, ...]


def ct_series(
    series: SeriesSpec, shape: phantom.Phantom, stack: Stack, windows: Windows, noise: float = 6.0
) -> SeriesPlan:
    """CT Image Storage slices; stored = HU + 1024 (RescaleIntercept -1024, slope 1)."""

    def instances() -> Iterator[Dataset]:
        for index in range(stack.count):
            hu = phantom.sample(shape, stack.points(index), "ct")
            hu = hu + _noise(series, index, hu.shape, noise)
            ds = _slice(series, stack, index, windows)
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
            ds.KVP, ds.XRayTubeCurrent, ds.ConvolutionKernel = 120, 200, "STANDARD"
            ds.AcquisitionNumber = 1
            set_native_pixels(ds, _clip_u12(hu + 1024.0))
            yield ds

    return SeriesPlan(series.folder, stack.count, instances)


def mr_series(
    series: SeriesSpec,
    shape: phantom.Phantom,
    stack: Stack,
    contrast: str,
    windows: Windows,
    repetition: float,
    echo: float,
    sequence: str = "SE",
    noise: float = 12.0,
) -> SeriesPlan:
    """MR Image Storage slices with ``contrast`` weighting of the phantom."""

    def instances() -> Iterator[Dataset]:
        for index in range(stack.count):
            signal = phantom.sample(shape, stack.points(index), contrast)
            signal = np.abs(signal + _noise(series, index, signal.shape, noise))
            ds = _slice(series, stack, index, windows)
            ds.ScanningSequence, ds.SequenceVariant = sequence, "SK"
            ds.ScanOptions, ds.MRAcquisitionType = "", "2D"
            ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = repetition, echo, 1
            ds.MagneticFieldStrength, ds.ImagingFrequency = 1.5, 63.87
            if contrast == "flair":
                ds.InversionTime = 2500
            ds.AcquisitionNumber = 1
            set_native_pixels(ds, _clip_u12(signal))
            yield ds

    return SeriesPlan(series.folder, stack.count, instances)


@dataclass(frozen=True)
class View:
    """A projection radiograph: ``direction`` of the beam, image axes and size."""

    position: str  # ViewPosition: PA, AP, LL, LATERAL...
    direction: Vector
    orientation: tuple[Vector, Vector]  # (row direction, column direction) in the patient
    patient_orientation: tuple[str, str]
    center: Vector
    rows: int
    columns: int
    spacing: float


def radiograph(series: SeriesSpec, shape: phantom.Phantom, view: View, gamma: float = 0.8) -> SeriesPlan:
    """A one-image CR series, 8-bit, JPEG Baseline compressed."""

    def instances() -> Iterator[Dataset]:
        row, column = (np.asarray(v) for v in view.orientation)
        corner = (
            np.asarray(view.center)
            - row * (view.columns - 1) / 2.0 * view.spacing
            - column * (view.rows - 1) / 2.0 * view.spacing
        )
        points = phantom.plane(
            (float(corner[0]), float(corner[1]), float(corner[2])),
            *view.orientation,
            view.rows,
            view.columns,
            (view.spacing, view.spacing),
        )
        density = phantom.project(shape, points, view.direction, "xray")
        density = density + _noise(series, 1, density.shape, 0.02)
        scaled = np.clip(density / max(float(density.max()), 1e-6), 0.0, 1.0) ** gamma
        ds = base_dataset(series, 1)
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.ViewPosition = view.position
        ds.PatientOrientation = list(view.patient_orientation)
        ds.ImagerPixelSpacing = ds.PixelSpacing = [_ds(view.spacing), _ds(view.spacing)]
        ds.KVP, ds.ExposureInuAs = 110 if shape.name == "chest" else 65, 2000
        ds.WindowCenter, ds.WindowWidth = 128, 256
        set_jpeg_pixels(ds, np.rint(scaled * 255.0).astype(np.uint8))
        yield ds

    return SeriesPlan(series.folder, 1, instances)


def _slice(series: SeriesSpec, stack: Stack, index: int, windows: Windows) -> Dataset:
    ds = base_dataset(series, index + 1)
    if stack.orientation != AXIAL:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    position = stack.position(index)
    ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = sample_uid(series.study.uid, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.ImageOrientationPatient = [_ds(v) for v in (*stack.orientation[0], *stack.orientation[1])]
    ds.PixelSpacing = [_ds(stack.spacing), _ds(stack.spacing)]
    ds.SliceThickness = _ds(stack.thickness)
    ds.SpacingBetweenSlices = _ds(stack.step)
    ds.SliceLocation = _ds(float(np.dot(stack.normal, position)))
    ds.WindowCenter = [_ds(c) for c in windows.centers]
    ds.WindowWidth = [_ds(w) for w in windows.widths]
    ds.WindowCenterWidthExplanation = list(windows.explanations)
    return ds


def _noise(series: SeriesSpec, index: int, shape: tuple[int, ...], sigma: float) -> NDArray[np.float32]:
    seed = zlib.crc32(f"{series.uid}/{index}".encode())
    return np.random.default_rng(seed).normal(0.0, sigma, shape).astype(np.float32)


def _clip_u12(values: NDArray[np.float32]) -> NDArray[np.uint16]:
    return np.clip(np.rint(values), 0, 4095).astype(np.uint16)


def _ds(value: float) -> str:
    """A decimal string of at most 16 characters, without ``-0``."""
    text = f"{round(value, 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
