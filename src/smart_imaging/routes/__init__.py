"""HTTP routes: FHIR (ImagingStudy search, discovery) and WADO-RS."""
