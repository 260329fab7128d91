"""Seeded whole-patient records shaped like Synthea's: for the record benchmark and tests.

A record is one patient's transaction Bundle the way Synthea writes it (``urn:uuid`` fullUrls,
``request`` POSTs, conditional references to Practitioner/Organization/Location by identifier),
1,000 to 7,700 entries and about 2 KB per entry (1 to 15 MB). Like a real long history it is
mostly billing: every Encounter and every prescription has a Claim and an ExplanationOfBenefit
(the EOBs, with their contained Coverage and ServiceRequest, adjudication lists and care team,
are the largest entries); then vital-sign and laboratory Observations with their
DiagnosticReports and the encounter notes (base64 ``presentedForm`` and DocumentReferences),
Immunizations, Procedures, MedicationRequests coded by RxNorm clinical drug (SCD), SNOMED
Conditions, a CareTeam and CarePlan, and Practitioner, Organization and Location entries that
the rest refers to. About one record in three has a back-pain Condition and a pain score.

Every code comes from the repository's knowledge or benchmark data or from the verified research
notes (RxNorm SCDs seen in Synthea modules); LOINC vital signs are the FHIR vital-signs profile's.
Everything derives from ``random.Random(seed)``: the same seed gives the same bytes. The output
is valid R4 (``tests/integration/test_whole_records.py`` sends a population of them through the
running service). About one prescription in four names its drug by ``medicationReference`` to a
Medication entry, as many EHRs do, and the everyday drugs of a long history (lisinopril,
metformin) sit beside the ones PainPath checks, so a record exercises both "used" and "reported".

    python bench/make_record.py record 5000 [SEED] > record.json
    python bench/make_record.py population 20 OUTDIR [SEED]
"""

from __future__ import annotations

import base64
import random
import sys
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

Json = dict[str, Any]
LOINC, SNOMED, UCUM = "http://loinc.org", "http://snomed.info/sct", "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
NPI = "http://hl7.org/fhir/sid/us-npi"
SYNTHEA = "https://github.com/synthetichealth/synthea"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"
MIN_ENTRIES, MAX_ENTRIES = 1_000, 7_700

_BACK_PAIN = [("279039007", "Low back pain (finding)"), ("23056005", "Sciatica (disorder)"),
              ("278860009", "Chronic low back pain (finding)")]  # fmt: skip
_CONDITIONS = [
    ("38341003", "Hypertensive disorder"), ("44054006", "Diabetes mellitus type 2"),
    ("195967001", "Asthma"), ("35489007", "Depressive disorder"), ("55822004", "Hyperlipidemia"),
]  # fmt: skip
# RxNorm SCDs used by Synthea modules (research notes, synthea_examples): code, display
_MEDICATIONS = [
    ("313782", "Acetaminophen 325 MG Oral Tablet"), ("310965", "Ibuprofen 200 MG Oral Tablet"),
    ("849574", "Naproxen sodium 220 MG Oral Tablet"), ("312938", "Sertraline 100 MG Oral Tablet"),
    ("312617", "predniSONE 5 MG Oral Tablet"), ("309362", "Clopidogrel 75 MG Oral Tablet"),
    ("855332", "Warfarin Sodium 5 MG Oral Tablet"), ("197591", "Diazepam 5 MG Oral Tablet"),
    ("835603", "tramadol hydrochloride 50 MG Oral Tablet"),
    ("1049221", "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet"),
    ("245134", "72 HR Fentanyl 0.025 MG/HR Transdermal System"),
    # everyday drugs no PainPath rule reads (reported as not recognised)
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"),
]  # fmt: skip
_VITALS = [  # LOINC, display, UCUM unit, low, high (FHIR vital-signs profile codes)
    ("8302-2", "Body Height", "cm", 150.0, 190.0), ("29463-7", "Body Weight", "kg", 50.0, 110.0),
    ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 18.0, 35.0),
    ("8867-4", "Heart rate", "/min", 55.0, 100.0), ("9279-1", "Respiratory rate", "/min", 12, 20),
]  # fmt: skip
_LABS = [
    ("4548-4", "Hemoglobin A1c", "%", 4.0, 6.0), ("2160-0", "Creatinine", "mg/dL", 0.6, 1.2),
    ("718-7", "Hemoglobin", "g/dL", 12.0, 17.0), ("2093-3", "Cholesterol", "mg/dL", 120, 200),
    ("6690-2", "Leukocytes", "10*3/uL", 4.0, 11.0),
]  # fmt: skip
_VACCINES = [("140", "Influenza, seasonal, injectable, preservative free"), ("208", "COVID-19"),
             ("115", "Tdap")]  # fmt: skip
_CHECK_UP = ("185349003", "Encounter for check up (procedure)")
_PROCEDURES = [("430193006", "Medication Reconciliation (procedure)"),
               ("171207006", "Depression screening (procedure)")]  # fmt: skip
_NOTE = ("34117-2", "History and physical note")
_NOTE_TEXT = (
    "{day}\n\n# Chief Complaint\nNo complaints.\n\n# History of Present Illness\n{name} is a "
    "{age} year-old patient. Patient has a history of {history}.\n\n# Social History\nPatient "
    "is married. Patient has never smoked. Patient has a high school education.\n\n# "
    "Allergies\nNo Known Allergies.\n\n# Medications\n{meds}\n\n# Assessment and Plan\n"
    "Patient is presenting for a routine check up.\n\n## Plan\nThe patient was counseled on "
    "diet and exercise, and follow up was arranged in one year.\n"
)


def _cc(system: str, code: str, display: str | None = None, text: str | None = None) -> Json:
    coding: Json = {"system": system, "code": code}
    if display:
        coding["display"] = display
    concept: Json = {"coding": [coding]}
    if text or display:
        concept["text"] = text or display
    return concept


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + "-05:00"


@dataclass
class _Record:
    """The Bundle being written and what its entries refer to."""

    rng: random.Random
    patient_url: str
    birth: date
    name: str
    entries: list[Json] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    meds: list[str] = field(default_factory=list)

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(self, resource: Json) -> str:
        url = f"urn:uuid:{resource['id']}"
        request = {"method": "POST", "url": resource["resourceType"]}
        self.entries.append({"fullUrl": url, "resource": resource, "request": request})
        return url

    @property
    def subject(self) -> Json:
        return {"reference": self.patient_url}


# --- the people and places every encounter refers to (Synthea's conditional references) ---------
@dataclass(frozen=True)
class _Provider:
    org_ref: Json
    loc_ref: Json
    practitioner_ref: Json


def _providers(record: _Record, count: int) -> list[_Provider]:
    providers = []
    for number in range(count):
        npi = str(9_999_900_000 + record.rng.randint(1, 99_999))
        org_key, loc_key = record.uid(), record.uid()
        name = f"Family Practice {number + 1}"
        record.add({
            "resourceType": "Organization", "id": org_key,
            "identifier": [{"system": SYNTHEA, "value": org_key}], "active": True,
            "type": [_cc(f"{TERMINOLOGY}/organization-type", "prov", "Healthcare Provider")],
            "name": name.upper(),
            "telecom": [{"system": "phone", "value": f"555-{record.rng.randint(1000, 9999)}"}],
            "address": [{"line": [f"{record.rng.randint(1, 999)} Main St"], "city": "Springfield",
                         "state": "MA", "postalCode": "01101", "country": "US"}],
        })  # fmt: skip
        record.add({
            "resourceType": "Location", "id": loc_key,
            "identifier": [{"system": SYNTHEA, "value": loc_key}], "status": "active",
            "name": name.upper(),
            "address": {"line": ["1 Clinic Way"], "city": "Springfield", "state": "MA",
                        "postalCode": "01101", "country": "US"},
            "position": {"longitude": -72.59 + number / 100, "latitude": 42.1 + number / 100},
            "managingOrganization": {"identifier": {"system": SYNTHEA, "value": org_key},
                                     "display": name.upper()},
        })  # fmt: skip
        record.add({
            "resourceType": "Practitioner", "id": record.uid(),
            "identifier": [{"system": NPI, "value": npi}], "active": True,
            "name": [{"family": f"Doctor{number}", "given": ["Sam"], "prefix": ["Dr."]}],
            "gender": record.rng.choice(["female", "male"]),
        })  # fmt: skip
        providers.append(
            _Provider(
                {"reference": f"Organization?identifier={SYNTHEA}|{org_key}", "display": name},
                {"reference": f"Location?identifier={SYNTHEA}|{loc_key}", "display": name},
                {"reference": f"Practitioner?identifier={NPI}|{npi}", "display": f"Dr. {number}"},
            )
        )
    return providers


@dataclass(frozen=True)
class _At:
    """The visit an entry belongs to."""

    encounter: str
    when: datetime
    provider: _Provider


def _patient(record: _Record, pid: str, gender: str) -> Json:
    race = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
    return {
        "resourceType": "Patient", "id": pid,
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">'
                 "Generated by a PainPath benchmark script</div>"},
        "extension": [{"url": race, "extension": [
            {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238",
                                                   "code": "2106-3", "display": "White"}},
            {"url": "text", "valueString": "White"}]}],
        "identifier": [{"system": SYNTHEA, "value": pid},
                       {"type": _cc("http://terminology.hl7.org/CodeSystem/v2-0203", "MR",
                                    "Medical Record Number"),
                        "system": "http://hospital.smarthealthit.org", "value": pid}],
        "name": [{"use": "official", "family": record.name, "given": ["Alex"]}],
        "telecom": [{"system": "phone", "value": "555-0100", "use": "home"}],
        "gender": gender, "birthDate": record.birth.isoformat(),
        "address": [{"line": ["12 Elm St"], "city": "Springfield", "state": "MA",
                     "country": "US"}],
        "maritalStatus": _cc(f"{TERMINOLOGY}/v3-MaritalStatus", "M", "Married"),
        "communication": [{"language": _cc("urn:ietf:bcp:47", "en-US", "English")}],
    }  # fmt: skip


# --- per-encounter entries ---------------------------------------------------------------------
def _encounter(record: _Record, when: datetime, provider: _Provider) -> str:
    code, display = _CHECK_UP
    return record.add({
        "resourceType": "Encounter", "id": record.uid(), "status": "finished",
        "class": {"system": f"{TERMINOLOGY}/v3-ActCode", "code": "AMB"},
        "type": [_cc(SNOMED, code, display)], "subject": record.subject,
        "participant": [{"type": [_cc(f"{TERMINOLOGY}/v3-ParticipationType", "PPRF",
                                      "primary performer")],
                         "period": {"start": _instant(when),
                                    "end": _instant(when + timedelta(minutes=15))},
                         "individual": provider.practitioner_ref}],
        "period": {"start": _instant(when), "end": _instant(when + timedelta(minutes=15))},
        "location": [{"location": provider.loc_ref}], "serviceProvider": provider.org_ref,
    })  # fmt: skip


def _observation(
    record: _Record, encounter: str, when: datetime, category: str, code: Json, **value: Any
) -> str:
    return record.add({
        "resourceType": "Observation", "id": record.uid(), "status": "final",
        "category": [_cc(f"{TERMINOLOGY}/observation-category", category)], "code": code,
        "subject": record.subject, "encounter": {"reference": encounter},
        "effectiveDateTime": _instant(when), "issued": _instant(when) , **value,
    })  # fmt: skip


def _quantity(value: float, unit: str) -> Json:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _vitals(record: _Record, encounter: str, when: datetime) -> list[str]:
    refs = []
    for code, display, unit, low, high in _VITALS:
        value = round(record.rng.uniform(low, high), 1)
        concept = _cc(LOINC, code, display)
        refs.append(_observation(record, encounter, when, "vital-signs", concept,
                                 valueQuantity=_quantity(value, unit)))  # fmt: skip
    pressure = [
        {"code": _cc(LOINC, code, name),
         "valueQuantity": _quantity(record.rng.randint(low, high), "mm[Hg]")}
        for code, name, low, high in (("8480-6", "Systolic blood pressure", 100, 170),
                                      ("8462-4", "Diastolic blood pressure", 60, 100))
    ]  # fmt: skip
    refs.append(_observation(record, encounter, when, "vital-signs",
                             _cc(LOINC, "85354-9", "Blood pressure panel with all children "
                                 "optional"), component=pressure))  # fmt: skip
    return refs


def _labs(record: _Record, encounter: str, when: datetime, provider: _Provider) -> None:
    results = []
    for code, name, unit, low, high in record.rng.sample(_LABS, 3):
        value = round(record.rng.uniform(low * 0.8, high * 1.2), 1)
        results.append(_observation(record, encounter, when, "laboratory", _cc(LOINC, code, name),
                                    valueQuantity=_quantity(value, unit)))  # fmt: skip
    record.add({
        "resourceType": "DiagnosticReport", "id": record.uid(), "status": "final",
        "category": [_cc(f"{TERMINOLOGY}/v2-0074", "LAB", "Laboratory")],
        "code": _cc(LOINC, "51990-0", "Basic metabolic panel - Blood"), "subject": record.subject,
        "encounter": {"reference": encounter}, "effectiveDateTime": _instant(when),
        "issued": _instant(when), "performer": [provider.org_ref],
        "result": [{"reference": r} for r in results],
    })  # fmt: skip


def _note(record: _Record, encounter: str, when: datetime, provider: _Provider) -> None:
    age = when.year - record.birth.year
    text = _NOTE_TEXT.format(
        day=when.date().isoformat(), name=record.name, age=age,
        history=", ".join(record.history[-6:]) or "no chronic conditions",
        meds="\n".join(f"- {m}" for m in record.meds[-8:]) or "None.",
    )  # fmt: skip
    data = base64.b64encode(text.encode()).decode()
    content_type = "text/plain; charset=utf-8"
    note_code = _cc(LOINC, *_NOTE)
    record.add({
        "resourceType": "DiagnosticReport", "id": record.uid(), "status": "final",
        "category": [_cc(LOINC, "34117-2", "History and physical note")], "code": note_code,
        "subject": record.subject, "encounter": {"reference": encounter},
        "effectiveDateTime": _instant(when), "issued": _instant(when),
        "performer": [provider.practitioner_ref],
        "presentedForm": [{"contentType": content_type, "data": data}],
    })  # fmt: skip
    record.add({
        "resourceType": "DocumentReference", "id": record.uid(), "status": "superseded",
        "type": note_code,
        "category": [_cc("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                         "clinical-note", "Clinical Note")],
        "subject": record.subject, "date": _instant(when), "author": [provider.practitioner_ref],
        "custodian": provider.org_ref,
        "content": [{"attachment": {"contentType": content_type, "data": data},
                     "format": {"system": "http://ihe.net/fhir/ValueSet/IHE.FormatCode.codesystem",
                                "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                                "display": "mimeType Sufficient"}}],
        "context": {"encounter": [{"reference": encounter}],
                    "period": {"start": _instant(when), "end": _instant(when)}},
    })  # fmt: skip


def _condition(record: _Record, at: _At, code: str, display: str, *, active: bool) -> None:
    encounter, when = at.encounter, at.when
    resource: Json = {
        "resourceType": "Condition", "id": record.uid(),
        "clinicalStatus": _cc(f"{TERMINOLOGY}/condition-clinical",
                              "active" if active else "resolved"),
        "verificationStatus": _cc(f"{TERMINOLOGY}/condition-ver-status", "confirmed"),
        "category": [_cc(f"{TERMINOLOGY}/condition-category", "encounter-diagnosis",
                         "Encounter Diagnosis")],
        "code": _cc(SNOMED, code, display), "subject": record.subject,
        "encounter": {"reference": encounter}, "onsetDateTime": _instant(when),
        "recordedDate": _instant(when),
    }  # fmt: skip
    if not active:
        resource["abatementDateTime"] = _instant(when + timedelta(days=14))
    record.add(resource)
    record.history.append(display)


def _medication(record: _Record, at: _At, code: str, name: str) -> str:
    encounter, when, provider = at.encounter, at.when, at.provider
    record.meds.append(name)
    drug: Json = {"medicationCodeableConcept": _cc(RXNORM, code, name)}
    if record.rng.random() < 0.25:  # the drug as a Medication entry the request refers to
        medication = record.add({"resourceType": "Medication", "id": record.uid(),
                                 "code": _cc(RXNORM, code, name), "status": "active"})  # fmt: skip
        drug = {"medicationReference": {"reference": medication, "display": name}}
    return record.add({
        "resourceType": "MedicationRequest", "id": record.uid(),
        "status": "active" if when.year >= 2026 else "stopped", "intent": "order",
        **drug, "subject": record.subject,
        "encounter": {"reference": encounter}, "authoredOn": _instant(when),
        "requester": provider.practitioner_ref,
        "dosageInstruction": [{"sequence": 1, "text": "Take as directed.",
                               "timing": {"repeat": {"frequency": 1, "period": 1.0,
                                                     "periodUnit": "d"}},
                               "asNeededBoolean": False}],
    })  # fmt: skip


def _claim(
    record: _Record, at: _At, items: list[Json], prescription: str | None
) -> tuple[str, Json]:
    encounter, when, provider = at.encounter, at.when, at.provider
    total = {"value": round(record.rng.uniform(80, 900), 2), "currency": "USD"}
    claim: Json = {
        "resourceType": "Claim", "id": record.uid(), "status": "active",
        "type": _cc(f"{TERMINOLOGY}/claim-type",
                    "pharmacy" if prescription else "professional"),
        "use": "claim", "patient": record.subject,
        "billablePeriod": {"start": _instant(when), "end": _instant(when + timedelta(hours=1))},
        "created": _instant(when + timedelta(hours=1)), "provider": provider.org_ref,
        "priority": _cc(f"{TERMINOLOGY}/processpriority", "normal"),
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Medicare"}}],
        "item": [{"sequence": n + 1, **item, "encounter": [{"reference": encounter}]}
                 for n, item in enumerate(items)],
        "total": total,
    }  # fmt: skip
    if prescription:
        claim["prescription"] = {"reference": prescription}
    return record.add(claim), claim


def _adjudication(record: _Record, net: float) -> list[Json]:
    adjudication = f"{TERMINOLOGY}/adjudication"
    parts = [("https://bluebutton.cms.gov/resources/codesystem/adjudication",
              "https://bluebutton.cms.gov/resources/variables/line_coinsrnc_amt",
              "Line Beneficiary Coinsurance Amount", 0.2),
             ("https://bluebutton.cms.gov/resources/codesystem/adjudication",
              "https://bluebutton.cms.gov/resources/variables/line_prvdr_pmt_amt",
              "Line Provider Payment Amount", 0.8),
             ("https://bluebutton.cms.gov/resources/codesystem/adjudication",
              "https://bluebutton.cms.gov/resources/variables/line_sbmtd_chrg_amt",
              "Line Submitted Charge Amount", 1.0),
             ("https://bluebutton.cms.gov/resources/codesystem/adjudication",
              "https://bluebutton.cms.gov/resources/variables/line_alowd_chrg_amt",
              "Line Allowed Charge Amount", 1.0),
             ("https://bluebutton.cms.gov/resources/codesystem/adjudication",
              "https://bluebutton.cms.gov/resources/variables/line_bene_ptb_ddctbl_amt",
              "Line Beneficiary Part B Deductible Amount", 0.0),
             ("https://bluebutton.cms.gov/resources/codesystem/adjudication",
              "https://bluebutton.cms.gov/resources/variables/line_prcsg_ind_cd",
              "Line Processing Indicator Code", None)]  # fmt: skip
    out = []
    for system, code, display, share in parts:
        entry: Json = {"category": _cc(system, code, display)}
        if share is not None:
            entry["amount"] = {"value": round(net * share, 2), "currency": "USD"}
        out.append(entry)
    out.append({"category": _cc(adjudication, "submitted", "Submitted Amount"),
                "amount": {"value": net, "currency": "USD"}})  # fmt: skip
    return out


def _eob(record: _Record, claim_url: str, claim: Json, provider: _Provider) -> None:
    net = claim["total"]["value"]
    coverage_id, referral_id = record.uid(), record.uid()
    items = []
    for item in claim["item"]:
        items.append({
            **item, "servicedPeriod": claim["billablePeriod"],
            "locationCodeableConcept": _cc("http://terminology.hl7.org/CodeSystem/ex-serviceplace",
                                           "19", "Off Campus-Outpatient Hospital"),
            "category": _cc("https://bluebutton.cms.gov/resources/variables/line_cms_type_srvc_cd",
                            "1", "Medical care"),
            "net": {"value": net, "currency": "USD"},
            "adjudication": _adjudication(record, net),
        })  # fmt: skip
    record.add({
        "resourceType": "ExplanationOfBenefit", "id": record.uid(),
        "contained": [
            {"resourceType": "ServiceRequest", "id": referral_id, "status": "completed",
             "intent": "order", "subject": record.subject,
             "requester": provider.practitioner_ref,
             "performer": [provider.practitioner_ref]},
            {"resourceType": "Coverage", "id": coverage_id, "status": "active",
             "type": {"text": "Medicare"}, "beneficiary": record.subject,
             "payor": [{"display": "Medicare"}]},
        ],
        "identifier": [
            {"system": "https://bluebutton.cms.gov/resources/variables/clm_id",
             "value": claim["id"]},
            {"system": "https://bluebutton.cms.gov/resources/identifier/claim-group",
             "value": str(record.rng.randint(10**11, 10**12))},
        ],
        "status": "active", "type": claim["type"], "use": "claim", "patient": record.subject,
        "billablePeriod": claim["billablePeriod"], "created": claim["created"],
        "insurer": {"display": "Medicare"}, "provider": provider.practitioner_ref,
        "referral": {"reference": f"#{referral_id}"},
        "claim": {"reference": claim_url}, "outcome": "complete",
        "careTeam": [{"sequence": 1, "provider": provider.practitioner_ref,
                      "role": _cc(f"{TERMINOLOGY}/claimcareteamrole", "primary",
                                  "Primary provider")}],
        "insurance": [{"focal": True, "coverage": {"reference": f"#{coverage_id}",
                                                   "display": "Medicare"}}],
        "item": items,
        "total": [{"category": _cc(f"{TERMINOLOGY}/adjudication", "submitted",
                                   "Submitted Amount"),
                   "amount": {"value": net, "currency": "USD"}}],
        "payment": {"amount": {"value": round(net * 0.8, 2), "currency": "USD"}},
    })  # fmt: skip


def _bill(record: _Record, at: _At, items: list[Json], prescription: str | None = None) -> None:
    url, claim = _claim(record, at, items, prescription)
    _eob(record, url, claim, at.provider)


def _visit(record: _Record, when: datetime, provider: _Provider, back_pain: bool) -> None:
    """One ambulatory visit and everything Synthea writes for it."""
    rng = record.rng
    encounter = _encounter(record, when, provider)
    at = _At(encounter, when, provider)
    items = [{"productOrService": _cc(SNOMED, *_CHECK_UP)}]
    if rng.random() < 0.3:
        _vitals(record, encounter, when)
    if rng.random() < 0.2:
        _labs(record, encounter, when, provider)
    if rng.random() < 0.08:
        code, display = rng.choice(_CONDITIONS)
        _condition(record, at, code, display, active=rng.random() < 0.5)
        items.append({"productOrService": _cc(SNOMED, code, display)})
    if rng.random() < 0.25:
        code, display = rng.choice(_PROCEDURES)
        record.add({
            "resourceType": "Procedure", "id": record.uid(), "status": "completed",
            "code": _cc(SNOMED, code, display), "subject": record.subject,
            "encounter": {"reference": encounter},
            "performedPeriod": {"start": _instant(when),
                                "end": _instant(when + timedelta(minutes=10))},
            "location": provider.loc_ref,
        })  # fmt: skip
        items.append({"productOrService": _cc(SNOMED, code, display)})
    if rng.random() < 0.2:
        code, display = rng.choice(_VACCINES)
        record.add({
            "resourceType": "Immunization", "id": record.uid(), "status": "completed",
            "vaccineCode": _cc(CVX, code, display), "patient": record.subject,
            "encounter": {"reference": encounter}, "occurrenceDateTime": _instant(when),
            "primarySource": True,
        })  # fmt: skip
        items.append({"productOrService": _cc(CVX, code, display)})
    if rng.random() < 0.6:
        _note(record, encounter, when, provider)
    _bill(record, at, items)
    if rng.random() < 0.35:
        code, name = rng.choice(_MEDICATIONS)
        prescription = _medication(record, at, code, name)
        _bill(record, at, [{"productOrService": _cc(RXNORM, code, name)}], prescription)
    if back_pain:
        code, display = rng.choice(_BACK_PAIN)
        _condition(record, at, code, display, active=True)
        _observation(record, encounter, when, "survey", _cc(LOINC, "72514-3",
                     "Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
                     valueQuantity={"value": rng.randint(3, 9), "unit": "{score}",
                                    "system": UCUM, "code": "{score}"})  # fmt: skip


def _care_plan(record: _Record, provider: _Provider, when: datetime) -> None:
    team = record.add({
        "resourceType": "CareTeam", "id": record.uid(), "status": "active",
        "subject": record.subject, "period": {"start": _instant(when)},
        "participant": [{"role": [_cc(SNOMED, "116154003", "Patient")],
                         "member": record.subject},
                        {"role": [_cc(SNOMED, "223366009", "Healthcare professional")],
                         "member": provider.practitioner_ref}],
        "managingOrganization": [provider.org_ref],
    })  # fmt: skip
    record.add({
        "resourceType": "CarePlan", "id": record.uid(), "status": "active", "intent": "order",
        "category": [_cc("http://hl7.org/fhir/us/core/CodeSystem/careplan-category",
                         "assess-plan")],
        "subject": record.subject, "period": {"start": _instant(when)},
        "careTeam": [{"reference": team}],
        "activity": [{"detail": {"status": "in-progress", "location": provider.loc_ref,
                                 "description": "Exercise and diet counselling"}}],
    })  # fmt: skip


def make_record(n_entries: int, *, seed: int = 0, back_pain: bool | None = None) -> Json:
    """A Synthea-like transaction Bundle of one patient with about ``n_entries`` entries.

    ``back_pain`` None: about one record in three (from the seed) has a back-pain episode.
    """
    rng = random.Random(f"record:{seed}:{n_entries}")
    birth = date(rng.randint(1940, 1990), rng.randint(1, 12), rng.randint(1, 28))
    pid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    record = _Record(rng, f"urn:uuid:{pid}", birth, f"Family{rng.randint(1, 999)}")
    record.add(_patient(record, pid, rng.choice(["female", "male"])))
    providers = _providers(record, rng.randint(2, 4))
    with_pain = rng.random() < 0.35 if back_pain is None else back_pain
    start = datetime(max(birth.year + 18, 2000), 1, 15, 9, 0)
    end = datetime(2026, 11, 10, 9, 0)
    # visits are spread over the years; the back-pain episode is the last visits
    estimate = max(1, (n_entries - len(record.entries)) * 10 // 75)
    step = (end - start) / estimate
    visit = 0
    while len(record.entries) < n_entries - 2:
        when = start + step * visit + timedelta(minutes=rng.randint(0, 600))
        _visit(record, min(when, end - timedelta(days=60)), rng.choice(providers), False)
        visit += 1
    if with_pain:  # the episode: the last two visits, six weeks apart
        for weeks in (6, 0):
            _visit(record, end - timedelta(weeks=weeks), providers[0], True)
    _care_plan(record, providers[0], end)
    return {"resourceType": "Bundle", "type": "transaction", "entry": record.entries}


def population(count: int, *, seed: int = 0) -> list[tuple[int, int]]:
    """(seed, entries) of ``count`` records, sizes spread evenly over 1,000..7,700 entries."""
    if count == 1:
        return [(seed, MIN_ENTRIES)]
    return [
        (seed * 10_000 + n, MIN_ENTRIES + (MAX_ENTRIES - MIN_ENTRIES) * n // (count - 1))
        for n in range(count)
    ]


def main(argv: list[str]) -> None:
    """Command line: see the module docstring."""
    if argv[:1] == ["record"]:
        seed = int(argv[2]) if len(argv) > 2 else 0
        sys.stdout.buffer.write(orjson.dumps(make_record(int(argv[1]), seed=seed)))
    elif argv[:1] == ["population"]:
        out = Path(argv[2])
        out.mkdir(parents=True, exist_ok=True)
        for number, (seed, entries) in enumerate(population(int(argv[1]))):
            body = orjson.dumps(make_record(entries, seed=seed))
            (out / f"record-{number:03d}.json").write_bytes(body)
            print(
                f"record-{number:03d}.json {entries} entries {len(body):,} bytes", file=sys.stderr
            )
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
