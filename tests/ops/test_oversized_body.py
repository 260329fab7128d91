"""413 for a client that writes the whole oversized body before it reads (urllib, requests and
many integration engines do): the server reads the body to its end and answers the
OperationOutcome, never a connection reset. A real uvicorn server and a plain socket client."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from live_servers import free_port, start_painpath

LIMIT = 200_000


@pytest.fixture(scope="module")
def base() -> Iterator[tuple[str, int]]:
    port = free_port()
    server = start_painpath(port, PAINPATH_MAX_BODY_BYTES=str(LIMIT))
    try:
        yield "127.0.0.1", port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _send_all_then_read(host: str, port: int, body: bytes, *, chunked: bool) -> bytes:
    """Write the whole request, then read the whole answer (no Expect: 100-continue)."""
    head = [
        "POST /fhir/$triage HTTP/1.1", f"Host: {host}:{port}",
        "Content-Type: application/fhir+json", "Connection: close",
    ]  # fmt: skip
    if chunked:
        head.append("Transfer-Encoding: chunked")
        payload = (
            b"".join(
                f"{len(body[i : i + 65536]):x}\r\n".encode() + body[i : i + 65536] + b"\r\n"
                for i in range(0, len(body), 65536)
            )
            + b"0\r\n\r\n"
        )
    else:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        answer = bytearray()
        while chunk := sock.recv(65536):
            answer += chunk
    return bytes(answer)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_client_that_sends_everything_first_gets_the_413(
    base: tuple[str, int], chunked: bool
) -> None:
    body = json.dumps({"resourceType": "Bundle", "type": "collection",
                       "entry": [], "padding": "x" * (LIMIT * 2)}).encode()  # fmt: skip
    answer = _send_all_then_read(*base, body, chunked=chunked)
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413"), status
    outcome = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "too-costly"


def test_a_body_within_the_limit_is_still_read(base: tuple[str, int]) -> None:
    body = json.dumps({"resourceType": "Bundle", "type": "collection"}).encode()
    status = _send_all_then_read(*base, body, chunked=False).split(b"\r\n", 1)[0]
    assert not status.startswith(b"HTTP/1.1 413"), status
