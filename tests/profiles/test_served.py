"""Serving the package: ``/fhir/metadata``, ``/fhir/{type}/{id}`` and ``/fhir/{type}?url=``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from profiles_testkit import Json

from service.fhir import canonicals as cn

SAMPLE = [
    "StructureDefinition/painpath-pain-type",
    "StructureDefinition/painpath-detectedissue",
    "ImplementationGuide/painpath.fhir",
    "OperationDefinition/triage",
    "PlanDefinition/back-pain-pathway",
    "ActivityDefinition/service-mri-lumbar",
    "CodeSystem/red-flag",
    "ValueSet/sciatica",
    "ConceptMap/service-to-snomed",
    "Questionnaire/dn4",
    "CapabilityStatement/painpath",
]


def test_metadata_is_the_packaged_capability_statement(
    client: TestClient, package: dict[str, Json]
) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    served = response.json()
    assert served == package["CapabilityStatement/painpath"]
    assert served["implementationGuide"] == [cn.IMPLEMENTATION_GUIDE]
    rest = served["rest"][0]
    assert rest["operation"][0]["definition"] == cn.TRIAGE_OPERATION
    by_type = {r["type"]: r for r in rest["resource"]}
    assert by_type["Patient"]["operation"][0]["definition"] == cn.TRIAGE_OPERATION
    for rtype, profiles in cn.PROFILES.items():
        assert by_type[rtype]["supportedProfile"] == list(profiles)


def test_every_operation_and_profile_the_capability_names_is_served(
    client: TestClient, package: dict[str, Json]
) -> None:
    rest = package["CapabilityStatement/painpath"]["rest"][0]
    named = {op["definition"] for op in rest["operation"]}
    named |= {p for r in rest["resource"] for p in r.get("supportedProfile", [])}
    named |= set(package["CapabilityStatement/painpath"]["implementationGuide"])
    for url in named:
        rtype = url.split("/")[-2]
        bundle = client.get(f"/fhir/{rtype}", params={"url": url}).json()
        assert bundle["total"] == 1, url


@pytest.mark.parametrize("key", SAMPLE)
def test_read_by_type_and_id(client: TestClient, package: dict[str, Json], key: str) -> None:
    response = client.get(f"/fhir/{key}")
    assert response.status_code == 200, response.text
    assert response.json() == package[key]


@pytest.mark.parametrize("key", SAMPLE)
def test_search_by_canonical_url(client: TestClient, package: dict[str, Json], key: str) -> None:
    resource = package[key]
    response = client.get(f"/fhir/{resource['resourceType']}", params={"url": resource["url"]})
    assert response.status_code == 200
    bundle = response.json()
    assert bundle["type"] == "searchset"
    assert [e["resource"] for e in bundle["entry"]] == [resource]
    versioned = f"{resource['url']}|{resource['version']}"
    again = client.get(f"/fhir/{resource['resourceType']}", params={"url": versioned}).json()
    assert again["total"] == 1


def test_examples_are_served(client: TestClient, package: dict[str, Json]) -> None:
    [example, *_] = [
        r for r in package.values() if cn.PAIN_TYPE_PROFILE in r.get("meta", {}).get("profile", [])
    ]
    response = client.get(f"/fhir/Observation/{example['id']}")
    assert response.status_code == 200
    assert response.json() == example


def test_every_resource_of_the_package_is_served(
    client: TestClient, package: dict[str, Json]
) -> None:
    missing = [key for key in package if client.get(f"/fhir/{key}").status_code != 200]
    assert not missing


def test_unknown_id_is_404(client: TestClient) -> None:
    response = client.get("/fhir/StructureDefinition/no-such-profile")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
