"""Structured logs: one JSON object per line, the request id, patient ids hashed (HMAC-SHA256).

``JsonFormatter`` replaces any ``Patient/<id>`` (or ``Patient%2F<id>``) in a message by its hash
(a second line of defence: no log call should carry one in the first place)."""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import logging
import re
import secrets
from datetime import UTC, datetime
from typing import Any

import orjson

from service.settings import Settings

__all__ = ["JsonFormatter", "PatientHasher", "configure_logging", "request_id", "request_id_var"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "painpath_request_id", default=None
)
# ``Patient/<id>``, also URL-encoded (``patient=Patient%2F<id>`` in a logged search URL)
_PATIENT_REF = re.compile(r"\bPatient(?:/|%2[Ff])([A-Za-z0-9\-.]{1,64})")


def request_id() -> str | None:
    """The id of the request being served (None outside a request)."""
    return request_id_var.get()


class PatientHasher:
    """HMAC-SHA256 of patient ids: the same id gives the same short hash within one key."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def __call__(self, patient: str) -> str:
        digest = hmac.new(self._key, patient.encode("utf-8", "replace"), hashlib.sha256)
        return digest.hexdigest()[:16]

    def redact(self, text: str) -> str:
        """``text`` with every ``Patient/<id>`` replaced by ``Patient/#<hash>``."""
        return _PATIENT_REF.sub(lambda m: f"Patient/#{self(m.group(1))}", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id and the record's ``event``."""

    def __init__(self, hasher: PatientHasher) -> None:
        super().__init__()
        self.hasher = hasher

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": self.hasher.redact(record.getMessage()),
        }
        rid = getattr(record, "request_id", None) or request_id()
        if rid:
            line["request_id"] = rid
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            line.update(event)
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__  # the type only: no trace, no values
        return orjson.dumps(line, default=str).decode()


_HANDLER_MARK = "_painpath_handler"


def configure_logging(settings: Settings, hasher: PatientHasher) -> None:
    """Install (or replace) PainPath's root handler: JSON lines on stderr, or plain text."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    setattr(handler, _HANDLER_MARK, True)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(hasher))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
