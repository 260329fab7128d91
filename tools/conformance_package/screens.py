"""The red-flag screen Questionnaire, generated from the knowledge files.

Its items are the prompts of ``[what_would_change.red-flag-screen-not-documented]`` in
catalogue.toml (RULES §9): one yes/no item per red-flag finding, its linkId the finding's code and
its ``code`` the coding the engine reads (``service.domain.screens`` turns the answers back into
findings). ``Questionnaire/$populate`` pre-fills it from the record.
"""

from __future__ import annotations

from service.domain.screens import RED_FLAG_SCREEN, screen_prompts
from tools.conformance_package.common import Json, Meta

__all__ = ["red_flag_screen"]


def red_flag_screen(meta: Meta) -> Json:
    """The red-flag screen Questionnaire."""
    resource = meta.header(
        "Questionnaire",
        RED_FLAG_SCREEN,
        title="PainPath red-flag screen",
        description="The red-flag findings that document the screen when none is recorded: "
        "answer yes (present) or no (asked and absent). Posted back to $triage, each answer "
        "is a finding, as an Observation with valueBoolean would be.",
    )
    systems = meta.kb.valuesets.systems
    resource["subjectType"] = ["Patient"]
    resource["item"] = [
        {
            "linkId": prompt.code,
            "code": [{"system": systems[prompt.system], "code": prompt.code}],
            "text": prompt.text,
            "type": "boolean",
        }
        for prompt in screen_prompts(meta.kb)
    ]
    return resource
