"""HTTP API (FastAPI): thin routes over the FHIR adapter and the domain."""
