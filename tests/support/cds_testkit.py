"""CDS Hooks test client pieces: request bodies shaped like the spec's examples, prefetch built from
a golden case, and a client that signs its JWTs (ES384 with an EC P-384 key, RS384 with an RSA
key) whose JWKS is served from a local ``httpx.MockTransport`` endpoint."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service.cds_hooks.request import PREFETCH, PREFETCH_TYPES
from service.server.pull import subject_patient_id

Json = dict[str, Any]
CASES = Path(__file__).resolve().parents[1] / "golden" / "cases"
ISSUER = "https://ehr.example.org/cds-client"
JWKS_URL = "https://ehr.example.org/.well-known/jwks.json"
SERVICE_BASE = "https://painpath.example.org"


def load_case(name: str) -> Json:
    """A golden case by id."""
    case: Json = json.loads((CASES / f"{name}.json").read_text(encoding="utf-8"))
    return case


def case_resources(case: Json) -> list[Json]:
    """The resources of a golden case's Bundle."""
    return [e["resource"] for e in case["bundle"]["entry"]]


def case_patient_id(case: Json) -> str:
    """The id of the case's Patient."""
    return str(next(r["id"] for r in case_resources(case) if r["resourceType"] == "Patient"))


def about_someone_else(case: Json) -> bool:
    """Whether the case's Bundle holds a record entry about another patient, or naming none (a
    Bundle may; a prefetch, about the context patient only, may not: CDS Hooks answers 400)."""
    patient = case_patient_id(case)
    return any(
        r["resourceType"] not in {"Patient", "Medication"} and subject_patient_id(r) != patient
        for r in case_resources(case)
    )


def as_of(case: Json) -> datetime:
    """The case's evaluation date."""
    return datetime.fromisoformat(case["asOf"])


def searchset(resources: list[Json]) -> Json:
    """A searchset Bundle of resources."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def prefetch_for(resources: list[Json], *, omit: tuple[str, ...] = ()) -> Json:
    """Every prefetch key of the discovery document filled from ``resources`` (``null`` where the
    patient has no data), except the keys in ``omit``."""
    prefetch: Json = {}
    for key, rtype in PREFETCH_TYPES.items():
        if key in omit:
            continue
        found = [r for r in resources if r["resourceType"] == rtype]
        if key == "patient":
            prefetch[key] = found[0] if found else None
        else:
            prefetch[key] = searchset(found) if found else None
    return prefetch


def hook_request(
    hook: str,
    patient_id: str,
    *,
    prefetch: Json | None = None,
    draft_orders: list[Json] | None = None,
    selections: list[str] | None = None,
    fhir_server: str | None = None,
    bearer: str | None = None,
    hook_instance: str | None = None,
) -> Json:
    """A request body shaped like the spec's examples for ``hook`` (a fresh ``hookInstance``
    unless one is given)."""
    body: Json = {"hookInstance": hook_instance or str(uuid.uuid4()), "hook": hook}
    if fhir_server:
        body["fhirServer"] = fhir_server
    if bearer:
        body["fhirAuthorization"] = {
            "access_token": bearer,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Patient.read user/Observation.read",
            "subject": "cds-service4",
        }
    context: Json = {"userId": "Practitioner/example", "patientId": patient_id}
    if hook != "patient-view":
        context["encounterId"] = "89284"
        orders = draft_orders or []
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "entry": [{"resource": o} for o in orders],
        }
        if hook == "order-select":
            context["selections"] = (
                selections
                if selections is not None
                else [f"{o['resourceType']}/{o['id']}" for o in orders]
            )
    body["context"] = context
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def draft_service_request(rid: str, patient_id: str, system: str, code: str, text: str) -> Json:
    """A draft ServiceRequest as an EHR's order entry would send it."""
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": system, "code": code}], "text": text},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def draft_medication(rid: str, patient_id: str, code: str, text: str) -> Json:
    """A draft MedicationRequest (RxNorm)."""
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}],
            "text": text,
        },
        "subject": {"reference": f"Patient/{patient_id}"},
    }


class CdsClient:
    """A CDS client's signing keys (one EC P-384, one RSA) and its JWKS endpoint."""

    def __init__(self, issuer: str = ISSUER, jwks_url: str = JWKS_URL) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.ec_key = ec.generate_private_key(ec.SECP384R1())
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.published: dict[str, ec.EllipticCurvePublicKey | rsa.RSAPublicKey] = {
            "ec-1": self.ec_key.public_key(),
            "rsa-1": self.rsa_key.public_key(),
        }
        self.jwks_requests = 0

    def jwks(self) -> Json:
        """The public JWK Set."""
        keys = []
        for kid, public in self.published.items():
            if isinstance(public, ec.EllipticCurvePublicKey):
                jwk = ECAlgorithm.to_jwk(public, as_dict=True)
                jwk["alg"] = "ES384"
            else:
                jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
                jwk["alg"] = "RS384"
            keys.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": keys}

    def transport(self) -> httpx.MockTransport:
        """Serves the JWKS at ``jwks_url``; anything else is 404."""

        def handle(request: httpx.Request) -> httpx.Response:
            if str(request.url) == self.jwks_url:
                self.jwks_requests += 1
                return httpx.Response(200, json=self.jwks())
            return httpx.Response(404)

        return httpx.MockTransport(handle)

    def token(
        self,
        aud: str,
        *,
        alg: str = "ES384",
        kid: str | None = None,
        claims: Json | None = None,
        headers: Json | None = None,
        key: Any = None,
    ) -> str:
        """A signed client JWT for ``aud`` (like the sandbox: exp = now + 300, jti = uuid)."""
        now = int(time.time())
        payload: Json = {
            "iss": self.issuer,
            "aud": aud,
            "exp": now + 300,
            "iat": now,
            "jti": str(uuid.uuid4()),
            **(claims or {}),
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        signing_key = key or (self.ec_key if alg.startswith("ES") else self.rsa_key)
        header: Json = {
            "kid": kid or ("ec-1" if alg.startswith("ES") else "rsa-1"),
            "typ": "JWT",
            "jku": self.jwks_url,
            **(headers or {}),
        }
        return jwt.encode(payload, signing_key, algorithm=alg, headers=header)


__all__ = [
    "ISSUER",
    "JWKS_URL",
    "PREFETCH",
    "SERVICE_BASE",
    "CdsClient",
    "as_of",
    "case_patient_id",
    "case_resources",
    "draft_medication",
    "draft_service_request",
    "hook_request",
    "load_case",
    "prefetch_for",
    "searchset",
]
