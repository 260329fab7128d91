"""The SMART launch cookie: what a launch must remember between ``/smart/launch`` and the EHR's
answer on ``/smart/callback`` (the ``state``, the PKCE ``code_verifier``, the FHIR base and the
token endpoint), kept in the browser, encrypted and signed (Fernet: AES-128-CBC and
HMAC-SHA256, with its time stamp checked against the launch lifetime).

Nothing is kept on the server, so any worker can take the answer; the key
(``PAINPATH_SMART_APP_SESSION_KEY``, else a random key per process) must then be shared. One
cookie per launch, named by its ``state`` (``painpath_smart_<state>``), so launches in several
tabs do not overwrite each other; it is sent to ``/smart/`` only, HttpOnly, SameSite=Lax (the
EHR's redirect back is a top-level GET), Secure when the redirect URI is https, and deleted once
the answer came. No access token is ever put in it: the token is used during the callback and
then forgotten.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken

__all__ = ["COOKIE_PATH", "LaunchCookies", "cookie_name"]

COOKIE_PATH = "/smart/"
_PREFIX = "painpath_smart_"
_STATE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def cookie_name(state: str | None) -> str | None:
    """The cookie of the launch with this ``state`` (None for a malformed or missing state)."""
    return _PREFIX + state if state and _STATE.match(state) else None


class LaunchCookies:
    """Seals and opens launch cookies with one key; ``ttl`` seconds is how long one is good."""

    def __init__(self, key: bytes | None, *, ttl: int) -> None:
        material = hashlib.sha256(key or secrets.token_bytes(32)).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(material))
        self.ttl = ttl

    def seal(self, launch: dict[str, str]) -> str:
        """The cookie value for ``launch``."""
        return self._fernet.encrypt(orjson.dumps(launch)).decode("ascii")

    def open(self, value: str | None) -> dict[str, Any] | None:
        """The launch, or None when the value is missing, forged, from another key or expired."""
        if not value:
            return None
        try:
            sealed = self._fernet.decrypt(value.encode("ascii"), ttl=self.ttl)
        except (InvalidToken, UnicodeEncodeError):
            return None
        launch: dict[str, Any] = orjson.loads(sealed)  # only this class seals, and only dicts
        return launch
