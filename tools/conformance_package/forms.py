"""PainPath's recording forms (RULES §9) as Questionnaires, generated from the knowledge files.

One Questionnaire per form of ``[questionnaires]`` in catalogue.toml (the red-flag screen, the
treatment-stage facts). Its items are the ``what_would_change`` prompts that name the form
(``service.domain.forms.form_items``): the linkId is the finding's code, ``code`` the coding the
engine reads, the type follows the concept (boolean for a finding, decimal or integer for a
score or quantity - with its range and UCUM unit - dateTime for the symptom onset).
``service.domain.forms`` turns the answers back into findings, and ``Questionnaire/$populate``
pre-fills the form from the record.
"""

from __future__ import annotations

from service.domain.forms import FormItem, form_items
from tools.conformance_package.common import Json, Meta

__all__ = ["recording_forms"]

_EXT = "http://hl7.org/fhir/StructureDefinition"
_UCUM = "http://unitsofmeasure.org"


def recording_forms(meta: Meta) -> list[Json]:
    """The recording-form Questionnaires, by id."""
    found = []
    for form, definition in sorted(meta.kb.catalogue.questionnaires.items()):
        resource = meta.header(
            "Questionnaire", form, title=definition.title, description=definition.description
        )
        resource["subjectType"] = ["Patient"]
        resource["item"] = [_item(item) for item in form_items(meta.kb, form)]
        found.append(resource)
    return found


def _item(item: FormItem) -> Json:
    out: Json = {
        "linkId": item.link_id,
        "code": [{"system": item.code.system, "code": item.code.code}],
        "text": item.text,
        "type": item.kind,
    }
    extensions: list[Json] = []
    if item.range is not None:
        kind = "valueInteger" if item.kind == "integer" else "valueDecimal"
        low, high = item.range
        extensions += [
            {"url": f"{_EXT}/minValue", kind: int(low) if kind == "valueInteger" else low},
            {"url": f"{_EXT}/maxValue", kind: int(high) if kind == "valueInteger" else high},
        ]
    if item.unit is not None:
        unit = {"system": _UCUM, "code": item.unit}
        extensions.append({"url": f"{_EXT}/questionnaire-unit", "valueCoding": unit})
    if extensions:
        out = {"extension": extensions, **out}
    return out
