"""Numerical phantoms built from ellipsoids (Shepp-Logan style), in patient coordinates (mm).

Coordinates are DICOM patient coordinates (LPS: x to the patient's left, y to posterior, z to
head). Each ellipsoid adds its value per contrast wherever a point lies inside it, so values of
nested ellipsoids add up as in the Shepp-Logan phantom. ``sample`` evaluates a phantom at points
(slices of any orientation); ``project`` integrates it along a direction (radiographs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Points = NDArray[np.float32]


@dataclass(frozen=True)
class Ellipsoid:
    center: tuple[float, float, float]  # mm
    axes: tuple[float, float, float]  # semi-axes, mm
    values: dict[str, float]  # contrast name -> additive value
    angle: float = 0.0  # rotation about the z axis, degrees
    tilt: float = 0.0  # then about the x axis, degrees

    def quadric(self) -> NDArray[np.float64]:
        """The matrix M with (p - c)^T M (p - c) <= 1 inside."""
        a, t = math.radians(self.angle), math.radians(self.tilt)
        rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
        rx = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
        rotation = rx @ rz
        return rotation @ np.diag([1.0 / s**2 for s in self.axes]) @ rotation.T  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Phantom:
    name: str
    ellipsoids: tuple[Ellipsoid, ...]
    background: dict[str, float] = field(default_factory=dict)


def sample(phantom: Phantom, points: Points, contrast: str) -> NDArray[np.float32]:
    """Phantom values at ``points`` (..., 3)."""
    flat = points.reshape(-1, 3)
    out = np.full(flat.shape[0], phantom.background.get(contrast, 0.0), dtype=np.float32)
    for shape in phantom.ellipsoids:
        value = shape.values.get(contrast, 0.0)
        if value == 0.0:
            continue
        low, high = _bounds(shape)
        near = np.all((flat >= low) & (flat <= high), axis=1)
        q = flat[near] - np.asarray(shape.center, dtype=np.float32)
        inside = np.einsum("ij,jk,ik->i", q, shape.quadric().astype(np.float32), q) <= 1.0
        hits = np.flatnonzero(near)[inside]
        out[hits] += value
    return out.reshape(points.shape[:-1])


def project(
    phantom: Phantom, points: Points, direction: tuple[float, float, float], contrast: str
) -> NDArray[np.float32]:
    """Line integrals (value x mm) through ``points`` (..., 3) along the unit ``direction``."""
    flat = points.reshape(-1, 3).astype(np.float64)
    d = np.asarray(direction, dtype=np.float64)
    out = np.zeros(flat.shape[0], dtype=np.float64)
    for shape in phantom.ellipsoids:
        value = shape.values.get(contrast, 0.0)
        if value == 0.0:
            continue
        m = shape.quadric()
        q = flat - np.asarray(shape.center)
        a = float(d @ m @ d)
        b = 2.0 * (q @ m @ d)
        c = np.einsum("ij,jk,ik->i", q, m, q) - 1.0
        disc = b * b - 4.0 * a * c
        out += value * np.sqrt(np.maximum(disc, 0.0)) / a
    result: NDArray[np.float32] = out.reshape(points.shape[:-1]).astype(np.float32)
    return result


def plane(
    origin: tuple[float, float, float],
    row: tuple[float, float, float],
    column: tuple[float, float, float],
    rows: int,
    columns: int,
    spacing: tuple[float, float],
) -> Points:
    """Centres of the pixels of an image plane, shape (rows, columns, 3).

    ``origin`` is the centre of the first pixel (ImagePositionPatient), ``row`` the direction
    along a row (increasing column index), ``column`` down a column; ``spacing`` is
    (between rows, between columns), as PixelSpacing.
    """
    r = np.arange(rows, dtype=np.float32)[:, None, None] * spacing[0]
    c = np.arange(columns, dtype=np.float32)[None, :, None] * spacing[1]
    o = np.asarray(origin, dtype=np.float32)
    points: Points = o + c * np.asarray(row, dtype=np.float32) + r * np.asarray(column, dtype=np.float32)
    return points


def _bounds(shape: Ellipsoid) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    reach = max(shape.axes)
    center = np.asarray(shape.center, dtype=np.float32)
    return center - reach, center + reach


def _e(
    center: tuple[float, float, float],
    axes: tuple[float, float, float],
    angle: float = 0.0,
    tilt: float = 0.0,
    **values: float,
) -> Ellipsoid:
    return Ellipsoid(center, axes, values, angle, tilt)


# Head: the 3-D Shepp-Logan ellipsoids (Kak & Slaney), scaled to an adult head
# (half-sizes 95 x 115 x 105 mm), with tissue values per contrast: CT in HU (air -1000), MR
# signal for T1, T2 and FLAIR weighting.
_HX, _HY, _HZ = 95.0, 115.0, 105.0


def _head(
    x: float, y: float, z: float, a: float, b: float, c: float, angle: float = 0.0, **values: float
) -> Ellipsoid:
    # Shepp-Logan y points up in the picture (anterior): patient y (posterior) is its negative.
    return Ellipsoid((x * _HX, -y * _HY, z * _HZ), (a * _HX, b * _HY, c * _HZ), values, angle)


HEAD = Phantom(
    "head",
    (
        _head(0, 0, 0, 0.69, 0.92, 0.81, ct=1800, t1=260, t2=90, flair=120),  # skull
        _head(0, -0.0184, 0, 0.6624, 0.874, 0.78, ct=-760, t1=340, t2=560, flair=520),  # brain
        _head(0.22, 0, 0, 0.11, 0.31, 0.22, -18, ct=-32, t1=-450, t2=900, flair=-580),  # ventricle
        _head(-0.22, 0, 0, 0.16, 0.41, 0.28, 18, ct=-32, t1=-450, t2=900, flair=-580),  # ventricle
        _head(0, 0.35, -0.15, 0.21, 0.25, 0.41, ct=8, t1=150, t2=-150, flair=-60),  # white matter
        _head(0, 0.1, 0.25, 0.046, 0.046, 0.05, ct=30, t1=-120, t2=500, flair=640),  # lesion
        _head(0, -0.1, 0.25, 0.046, 0.046, 0.05, ct=12, t1=-90, t2=380, flair=520),  # lesion
        _head(-0.08, -0.605, 0, 0.046, 0.023, 0.05, ct=15, t1=60, t2=60, flair=60),
        _head(0, -0.606, 0, 0.023, 0.023, 0.02, ct=15, t1=60, t2=60, flair=60),
        _head(0.06, -0.605, 0, 0.023, 0.046, 0.02, ct=15, t1=60, t2=60, flair=60),
    ),
    background={"ct": -1000.0},
)


# Chest: body, fat layer, lungs (emphysematous), heart, aorta, spine, sternum, and a nodule in
# the right upper lobe. CT in HU; "xray" is a linear attenuation (per mm) for radiographs.
CHEST = Phantom(
    "chest",
    (
        _e((0, 10, 0), (170, 115, 400), ct=900, xray=0.020),  # body (fat)
        _e((0, 10, 0), (158, 103, 400), ct=140, xray=0.002),  # muscle and organs
        _e((-85, 0, 30), (62, 78, 150), ct=-1010, xray=-0.019),  # right lung
        _e((85, 0, 30), (58, 78, 150), ct=-1010, xray=-0.019),  # left lung
        _e((22, -22, -40), (58, 48, 60), 25, ct=10, xray=0.012),  # heart
        _e((8, 30, 10), (13, 13, 300), ct=150, xray=0.002),  # descending aorta (contrast)
        _e((0, 68, 0), (20, 18, 400), ct=700, xray=0.030),  # vertebral bodies
        _e((0, 68, 0), (8, 7, 400), ct=-650, xray=-0.018),  # spinal canal
        _e((0, -88, 0), (12, 6, 110), ct=550, xray=0.020),  # sternum
        _e((-60, -35, 95), (6, 6, 6), ct=900, xray=0.019),  # nodule, right upper lobe
    ),
    background={"ct": -1000.0},
)


# Knee: soft tissue, femur and tibia (cortex + marrow), condyles, patella, fibula.
KNEE = Phantom(
    "knee",
    (
        _e((0, 0, 0), (60, 55, 300), xray=0.020),  # soft tissue
        _e((0, 0, 150), (16, 16, 160), xray=0.025),  # femoral shaft
        _e((0, 0, 150), (10, 10, 165), xray=-0.012),  # femoral marrow
        _e((0, 4, 18), (40, 30, 28), xray=0.022),  # femoral condyles
        _e((0, 4, -30), (38, 28, 22), xray=0.022),  # tibial plateau
        _e((0, 0, -150), (18, 16, 135), xray=0.025),  # tibial shaft
        _e((0, 0, -150), (11, 10, 140), xray=-0.012),  # tibial marrow
        _e((34, 12, -80), (7, 7, 110), xray=0.028),  # fibula
        _e((0, -42, 30), (20, 10, 24), xray=0.030),  # patella
    ),
)
