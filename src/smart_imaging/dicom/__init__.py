"""Pure DICOM helpers: tags, the DICOM JSON model, UIDs, dates and multipart bodies (no I/O)."""
