"""PainPath: FHIR R4 clinical decision support for back pain."""

__all__ = ["__version__"]

__version__ = "0.1.0"
