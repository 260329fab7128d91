"""The production app plus one bench-only route, for benchmark 2 (never shipped in service/).

``POST /bench/echo`` only parses the body with orjson and re-serialises it: the floor that the
``$triage`` throughput is compared with, served by the same app, server and workers.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from service.api.app import create_app


def create_bench_app() -> FastAPI:
    """``uvicorn --factory bench_app:create_bench_app``."""
    app = create_app()

    @app.post("/bench/echo")
    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(orjson.dumps(orjson.loads(body)), media_type="application/fhir+json")

    return app
