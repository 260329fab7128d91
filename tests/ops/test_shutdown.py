"""Graceful shutdown: `painpath serve` (uvicorn) finishes an in-flight request on SIGTERM."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
from fhir_testkit import CASES
from live_servers import free_port, start_painpath


def test_in_flight_request_completes_on_sigterm() -> None:
    port = free_port()
    server = start_painpath(port)
    base = f"http://127.0.0.1:{port}"
    try:
        # a slow request: a large (valid) Bundle, sent slowly so it is in flight at SIGTERM
        bundle = json.loads((CASES / "cauda-equina-saddle-anaesthesia.json").read_text())
        body = json.dumps(bundle.get("bundle", bundle)).encode()

        def trickle() -> Iterator[bytes]:
            for start in range(0, len(body), 256):
                yield body[start : start + 256]
                time.sleep(0.1)

        result: dict[str, Any] = {}

        def call() -> None:
            with httpx.Client(timeout=30) as client:
                answer = client.post(f"{base}/fhir/$triage", content=trickle(),
                                     headers={"Content-Type": "application/fhir+json"})  # fmt: skip
                result["status"] = answer.status_code
                result["type"] = answer.json().get("resourceType")
                result["finished"] = time.monotonic()

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.3)  # the request has started streaming
        assert server.poll() is None
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        caller.join(30)
        assert result.pop("finished") > signalled + 0.2  # it really was in flight
        assert result == {"status": 200, "type": "Bundle"}
        # uvicorn re-raises the signal after its graceful shutdown
        assert server.wait(30) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
