"""A study as a source reports it: DICOM JSON (PS3.18 F.2) at study, series and instance level.

Plain data shared by the sources (which produce it), the FHIR mapping and the access decisions
(which read it), so that neither of the latter imports the sources."""

from __future__ import annotations

from dataclasses import dataclass, field

from .json_model import DicomJson


@dataclass
class SeriesRecord:
    series: DicomJson
    instances: list[DicomJson] | None = None  # None: not known cheaply


@dataclass
class StudyRecord:
    study: DicomJson
    series: list[SeriesRecord] = field(default_factory=list)
    last_updated: str | None = None  # FHIR instant, when the source knows it
