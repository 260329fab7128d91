"""Live helpers for the integration tests: PainPath under uvicorn in a background thread, and a
tiny HTTP/1.1 fault proxy (pass, drop, delay, 500) in front of the FHIR server.

Both listen on a free 127.0.0.1 port and stop when their context ends. The proxy handles one
request per connection (it answers ``Connection: close``), so every request meets its own fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

__all__ = ["FaultProxy", "free_port", "serve_app"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_app(app: Any, *, timeout: float = 20.0, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on ``port`` (default: a free one) in a thread; yields its
    base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"painpath-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("PainPath did not start under uvicorn")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


_OUTCOME = json.dumps(
    {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "transient", "diagnostics": "proxy: injected 500"}],
    }
).encode()


@dataclass
class FaultProxy:
    """Forwards to ``127.0.0.1:{upstream_port}``; ``plan`` holds the next requests' faults:
    ``"pass"``, ``"drop"`` (close without answering), ``"500"`` or ``"delay:<seconds>"``."""

    upstream_port: int
    plan: deque[str] = field(default_factory=deque)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (method, target, action)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None

    @property
    def base(self) -> str:
        """The proxied FHIR base URL."""
        return f"http://127.0.0.1:{self.port}/fhir"

    def queue(self, *actions: str) -> None:
        """Faults for the next requests, in order (then everything passes)."""
        self.plan.extend(actions)

    @contextlib.contextmanager
    def running(self) -> Iterator[FaultProxy]:
        """Run the proxy in a background thread."""
        self.port = free_port()
        ready = threading.Event()
        stop: list[asyncio.Event] = []

        async def main() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
            stop.append(asyncio.Event())
            self._loop = asyncio.get_running_loop()
            ready.set()
            async with server:
                await stop[0].wait()

        thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        thread.start()
        ready.wait(10)
        try:
            yield self
        finally:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(stop[0].set)
            thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target = head.split(b" ", 2)[:2]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            action = self.plan.popleft() if self.plan else "pass"
            self.seen.append((method.decode(), target.decode(), action))
            if action == "drop":
                return
            if action == "500":
                writer.write(_response(500, "Internal Server Error", _OUTCOME))
            else:
                if action.startswith("delay:"):
                    await asyncio.sleep(float(action.split(":", 1)[1]))
                writer.write(await self._forward(head, body))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _forward(self, head: bytes, body: bytes) -> bytes:
        lines = [
            line
            for line in head.rstrip(b"\r\n").split(b"\r\n")
            if not line.lower().startswith(b"connection:")
        ]
        request = b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.upstream_port
        )
        upstream_writer.write(request)
        await upstream_writer.drain()
        answer = await upstream_reader.read(-1)
        upstream_writer.close()
        response_head, _, response_body = answer.partition(b"\r\n\r\n")
        kept = [
            line
            for line in response_head.split(b"\r\n")
            if not line.lower().startswith(b"connection:")
        ]
        return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n" + response_body


def _response(status: int, reason: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/fhir+json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def start_painpath(port: int, **settings: str) -> subprocess.Popen[bytes]:
    """``painpath serve`` on 127.0.0.1:``port`` (``settings``: extra PAINPATH_* variables; a
    PAINPATH_FHIR_SERVER of the environment is not inherited), once ``/healthz`` answers; the
    caller stops it."""
    inherited = {k: v for k, v in os.environ.items() if k != "PAINPATH_FHIR_SERVER"}
    env = {**inherited, "PAINPATH_HOST": "127.0.0.1", "PAINPATH_PORT": str(port),
           "PAINPATH_LOG_LEVEL": "warning", "PAINPATH_AUTH_MODE": "none", **settings}  # fmt: skip
    painpath = Path(sys.executable).parent / "painpath"
    server = subprocess.Popen([str(painpath), "serve"], env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError("painpath serve did not start")
        time.sleep(0.1)
