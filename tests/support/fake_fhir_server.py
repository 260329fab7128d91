"""An in-memory FHIR server behind ``httpx.MockTransport`` for the client tests (tests/clients).

It does just what PainPath's client asks of a server: read, PUT, search with ``_count`` paging
(next links at a configurable foreign host, like HAPI behind a proxy), ``patient``/``subject``/
``_id``/``target`` filters, ``_include`` of Medications, and atomic transactions of PUTs. Faults
are queued per request: a status (with an OperationOutcome), a transport exception, or a hook.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

Json = dict[str, Any]
BASE = "http://fhir.test/fhir"
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
Fault = int | Exception | Callable[[httpx.Request], httpx.Response]


def outcome(text: str) -> Json:
    """An OperationOutcome with one error issue."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": text}],
    }


def _ref_id(value: str) -> str:
    return value.split("/")[-1]


@dataclass
class FakeFhirServer:
    """A tiny FHIR server; ``requests`` records every request it saw."""

    base: str = BASE
    link_base: str = BASE  # where next links point (another host = a misconfigured proxy)
    store: dict[tuple[str, str], Json] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    transactions: list[Json] = field(default_factory=list)
    version: int = 0

    def add(self, resource: Json) -> Json:
        """Store a resource (new version)."""
        self.version += 1
        stored = copy.deepcopy(resource)
        stored["meta"] = {"versionId": str(self.version)}
        self.store[(stored["resourceType"], stored["id"])] = stored
        return stored

    def load_bundle(self, path: Path) -> None:
        """Store every entry of a Bundle file."""
        for entry in json.loads(path.read_text())["entry"]:
            self.add(entry["resource"])

    def of_type(self, rtype: str) -> list[Json]:
        """Every stored resource of a type."""
        return [r for (t, _), r in sorted(self.store.items()) if t == rtype]

    def transport(self) -> httpx.MockTransport:
        """The MockTransport serving this server."""
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Serve one request (or the next queued fault)."""
        self.requests.append(request)
        if self.faults:
            fault = self.faults.pop(0)
            if isinstance(fault, Exception):
                raise fault
            if callable(fault):
                return fault(request)
            return httpx.Response(fault, json=outcome(f"injected {fault}"))
        return self._route(request)

    def _route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix(urlsplit(self.base).path).strip("/")
        parts = path.split("/") if path else []
        if request.method == "POST" and not parts:
            return self._transaction(json.loads(request.content))
        if request.method == "PUT" and len(parts) == 2:
            return httpx.Response(200, json=self.add(json.loads(request.content)))
        if request.method == "GET" and len(parts) == 2:
            found = self.store.get((parts[0], parts[1]))
            if found is None:
                return httpx.Response(404, json=outcome(f"{path} not found"))
            return httpx.Response(200, json=found)
        if request.method == "GET" and len(parts) == 1:
            return self._search(parts[0], list(parse_qsl(request.url.query.decode())))
        return httpx.Response(400, json=outcome(f"unsupported {request.method} {path}"))

    def _matches(self, resource: Json, name: str, value: str) -> bool:
        if name in {"patient", "subject"}:
            holder = resource.get("subject") or resource.get("patient") or {}
            return _ref_id(str(holder.get("reference", ""))) == _ref_id(value)
        if name == "_id":
            return resource["id"] in value.split(",")
        if name == "target":
            targets = {t["reference"] for t in resource.get("target", [])}
            return bool(targets & set(value.split(",")))
        return True  # ignored parameter (like a lenient server)

    def _search(self, rtype: str, query: list[tuple[str, str]]) -> httpx.Response:
        control = dict(query)
        filters = [(k, v) for k, v in query if not k.startswith("_") or k == "_id"]
        hits = [r for r in self.of_type(rtype) if all(self._matches(r, k, v) for k, v in filters)]
        count, offset = int(control.get("_count", 100)), int(control.get("_offset", 0))
        page = hits[offset : offset + count]
        entries = [{"resource": r, "search": {"mode": "match"}} for r in page]
        if "_include" in control:
            for r in page:
                ref = (r.get("medicationReference") or {}).get("reference")
                if ref and tuple(ref.split("/")) in self.store:
                    med = self.store[tuple(ref.split("/"))]
                    entries.append({"resource": med, "search": {"mode": "include"}})
        bundle: Json = {"resourceType": "Bundle", "type": "searchset", "total": len(hits)}
        bundle["entry"] = entries
        if offset + count < len(hits):
            nxt = [(k, v) for k, v in query if k != "_offset"] + [("_offset", str(offset + count))]
            bundle["link"] = [
                {"relation": "next", "url": f"{self.link_base}/{rtype}?{urlencode(nxt)}"}
            ]
        return httpx.Response(200, json=bundle)

    def _transaction(self, bundle: Json) -> httpx.Response:
        self.transactions.append(bundle)
        staged = dict(self.store)
        entries = []
        for entry in bundle["entry"]:
            request = entry["request"]
            if request["method"] != "PUT" or "?" in request["url"]:
                return httpx.Response(400, json=outcome("only PUT Type/id is supported"))
            resource = copy.deepcopy(entry["resource"])
            rtype, rid = request["url"].split("/")
            if (resource["resourceType"], resource["id"]) != (rtype, rid):
                return httpx.Response(400, json=outcome("id mismatch: rolled back"))
            existed = (rtype, rid) in staged
            self.version += 1
            resource["meta"] = {"versionId": str(self.version)}
            staged[(rtype, rid)] = resource
            status = "200 OK" if existed else "201 Created"
            entries.append({"response": {"status": status, "location": f"{rtype}/{rid}"}})
        self.store = staged
        return httpx.Response(
            200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
        )


class Sleeps(list[float]):
    """Records the backoff delays instead of sleeping."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
