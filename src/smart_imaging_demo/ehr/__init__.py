"""Embedded EHR sandbox for the demo: a small SMART on FHIR authorization server and FHIR R4
server for the synthetic demo patients, as its own Starlette app (mounted at ``/ehr``).

Use :func:`create_ehr_app` with an :class:`EhrConfig`.
"""

from smart_imaging_demo.ehr.app import create_ehr_app
from smart_imaging_demo.ehr.config import BackendClient, EhrConfig

__all__ = ["BackendClient", "EhrConfig", "create_ehr_app"]
