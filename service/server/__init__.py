"""The configured FHIR server: client, Patient/$triage pull + write-back, re-evaluation."""
