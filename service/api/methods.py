"""HTTP methods the routes do not declare themselves: ``HEAD`` wherever ``GET`` is served.

RFC 9110 9.3.2: a server answers ``HEAD`` as it would ``GET``, without the content. FastAPI's
``@router.get`` routes take ``GET`` only, so :class:`HeadAsGet` routes a ``HEAD`` request as the
``GET`` it stands for and drops the body of the answer (its headers, ``Content-Length``
included, are the ``GET``'s). Where ``GET`` is not served, the ``405`` is the ``GET``'s, with the
route's ``Allow``; an ``Allow`` naming ``GET`` also names ``HEAD``. Installed innermost, so the
access log and the metrics still name ``HEAD``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HeadAsGet"]


class HeadAsGet:
    """ASGI middleware: a ``HEAD`` request is routed as ``GET`` and answered without a body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "HEAD":
            await self.app(scope, receive, _allowing_head(send))
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # the scope is shared with the outer middleware (it reads the matched route from it),
        # so the method is switched in place and put back once the answer is sent
        scope["method"] = "GET"
        try:
            await self.app(scope, receive, _allowing_head(send_headers_only))
        finally:
            scope["method"] = "HEAD"


def _allowing_head(send: Send) -> Send:
    """``send`` with ``HEAD`` added to a 405's ``Allow`` that names ``GET`` (the routes declare
    ``GET`` only; this middleware serves ``HEAD`` for them)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 405:
            headers = []
            for name, value in message.get("headers", ()):
                if name.lower() == b"allow":
                    methods = [m.strip() for m in value.decode("latin-1").split(",")]
                    if "GET" in methods and "HEAD" not in methods:
                        value = ", ".join([*methods, "HEAD"]).encode("latin-1")
                headers.append((name, value))
            message = {**message, "headers": headers}
        await send(message)

    return sending
