"""Pure clinical domain: facts, knowledge, engine. No FastAPI, httpx or fhir.resources here."""
