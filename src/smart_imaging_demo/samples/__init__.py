"""Demo sample data: synthetic patients and their DICOM studies."""
