"""smart-imaging: SMART Imaging Access server."""

__version__ = "0.1.0"
