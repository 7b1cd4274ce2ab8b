"""The demo's sample studies: which patient has which study, and how each is made.

Per patient (see ``patients.py``) a few studies of different modalities: phantom-based CT and
MR slice stacks, JPEG Baseline radiographs, pydicom's small real series re-assigned
(``testdata.py``), and pydicom's compressed, multi-frame and color files (``codecs.py``).
"""

from __future__ import annotations

from . import codecs, testdata
from .dataset import SeriesSpec, StudySpec
from .imaging import (
    AXIAL,
    SAGITTAL,
    SeriesPlan,
    Stack,
    View,
    Windows,
    ct_series,
    mr_series,
    radiograph,
)
from .patients import PATIENTS, DemoPatient
from .phantom import CHEST, HEAD, KNEE

CT_LUNG_MEDIASTINUM = Windows((-600.0, 40.0), (1500.0, 400.0), ("LUNG", "MEDIASTINUM"))
CT_BRAIN_BONE = Windows((40.0, 600.0), (80.0, 2800.0), ("BRAIN", "BONE"))
HEAD_STACK = Stack((0.0, 0.0, 5.0), AXIAL, 256, 256, 0.9375, 24, 6.0, 5.0)
MR_T1 = Windows((450.0,), (900.0,), ("T1",))
MR_T2 = Windows((800.0,), (1600.0,), ("T2",))
MR_FLAIR = Windows((700.0,), (1400.0,), ("FLAIR",))


def _patient(mrn: str) -> DemoPatient:
    return next(p for p in PATIENTS if p.mrn == mrn)


def mr_brain() -> list[SeriesPlan]:
    """Ava Chen (migraine): MR brain, axial T1/T2/FLAIR and sagittal T1."""
    study = StudySpec(
        _patient("MRN-1001"),
        "mr-brain",
        "MR BRAIN WO CONTRAST",
        "20240212",
        "093000",
        "-0500",
        "A100101",
        "1",
    )
    sagittal = Stack((0.0, 0.0, 5.0), SAGITTAL, 256, 256, 0.9375, 19, 6.0, 5.0)

    def series(number: int, description: str, time: str) -> SeriesSpec:
        return SeriesSpec(study, number, "MR", description, "BRAIN", time)

    return [
        mr_series(series(1, "Ax T1 SE", "093212"), HEAD, HEAD_STACK, "t1", MR_T1, 500.0, 12.0),
        mr_series(series(2, "Ax T2 FSE", "093845"), HEAD, HEAD_STACK, "t2", MR_T2, 4000.0, 100.0),
        mr_series(
            series(3, "Ax T2 FLAIR", "094530"), HEAD, HEAD_STACK, "flair", MR_FLAIR, 9000.0, 120.0, "IR"
        ),
        mr_series(series(4, "Sag T1 SE", "095302"), HEAD, sagittal, "t1", MR_T1, 500.0, 12.0),
    ]


def ct_chest() -> list[SeriesPlan]:
    """Marcus Okafor (COPD, pulmonary nodule): CT chest, 64 axial slices of 5 mm."""
    study = StudySpec(
        _patient("MRN-1002"),
        "ct-chest",
        "CT CHEST WO CONTRAST",
        "20240305",
        "141000",
        "-0500",
        "A100201",
        "1",
    )
    stack = Stack((0.0, 10.0, 0.0), AXIAL, 256, 256, 1.5, 64, 5.0, 5.0)
    series = SeriesSpec(study, 2, "CT", "Chest 5mm", "CHEST", "141305")
    return [ct_series(series, CHEST, stack, CT_LUNG_MEDIASTINUM)]


def xr_chest() -> list[SeriesPlan]:
    """Marcus Okafor: chest radiographs PA and lateral, JPEG Baseline."""
    study = StudySpec(
        _patient("MRN-1002"),
        "xr-chest",
        "XR CHEST PA AND LATERAL",
        "20230918",
        "100500",
        "-0400",
        "A100202",
        "2",
    )
    pa = View(
        "PA",
        (0.0, -1.0, 0.0),
        ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
        ("L", "F"),
        (0.0, 0.0, 20.0),
        512,
        512,
        0.8,
    )
    lateral = View(
        "LL",
        (1.0, 0.0, 0.0),
        ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
        ("P", "F"),
        (0.0, 10.0, 20.0),
        512,
        512,
        0.8,
    )
    return [
        radiograph(SeriesSpec(study, 1, "CR", "Chest PA", "CHEST", "100612"), CHEST, pa),
        radiograph(SeriesSpec(study, 2, "CR", "Chest Lateral", "CHEST", "100745"), CHEST, lateral),
    ]


def xr_knee() -> list[SeriesPlan]:
    """Lucia Ramirez (knee osteoarthritis): knee radiographs AP and lateral, JPEG Baseline."""
    study = StudySpec(
        _patient("MRN-1003"),
        "xr-knee",
        "XR KNEE RIGHT 2 VIEWS",
        "20240122",
        "162000",
        "-0500",
        "A100301",
        "1",
    )
    ap = View(
        "AP", (0.0, 1.0, 0.0), ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)), ("L", "F"), (0.0, 0.0, 0.0), 512, 384, 0.5
    )
    lateral = View(
        "LATERAL",
        (1.0, 0.0, 0.0),
        ((0.0, -1.0, 0.0), (0.0, 0.0, -1.0)),
        ("A", "F"),
        (0.0, 0.0, 0.0),
        512,
        384,
        0.5,
    )
    return [
        radiograph(SeriesSpec(study, 1, "CR", "Knee AP", "KNEE", "162130"), KNEE, ap, 1.2),
        radiograph(SeriesSpec(study, 2, "CR", "Knee Lateral", "KNEE", "162255"), KNEE, lateral, 1.2),
    ]


def ct_head() -> list[SeriesPlan]:
    """Sam Patel (fall while skating): CT head, 40 axial slices of 5 mm."""
    study = StudySpec(
        _patient("MRN-1004"), "ct-head", "CT HEAD WO CONTRAST", "20231104", "201000", "-0400", "A100401", "1"
    )
    stack = Stack((0.0, 0.0, 0.0), AXIAL, 256, 256, 0.9, 40, 5.0, 5.0)
    series = SeriesSpec(study, 2, "CT", "Head 5mm", "HEAD", "201233")
    return [ct_series(series, HEAD, stack, CT_BRAIN_BONE)]


def all_plans() -> list[SeriesPlan]:
    """Every series of the demo, in a stable order."""
    return [
        *mr_brain(),
        *ct_chest(),
        *xr_chest(),
        *xr_knee(),
        *ct_head(),
        *testdata.plans(),
        *codecs.plans(),
    ]
