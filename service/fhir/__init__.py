"""FHIR adapter: the only package that knows FHIR JSON and imports fhir.resources."""
