"""Pure FHIR R4 builders: DICOM JSON to ImagingStudy, Endpoint, Bundle, OperationOutcome."""
