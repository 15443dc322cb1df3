"""One error shape: every error response is `{"error": "<what to fix>"}`.

custseg's own refusals already are (the guard, `BadRequest`); BentoML answers the rest in its
own ways: a body it cannot parse into the API's request model as `{"error": "1 validation error
for PredictRequestIODescriptor", "detail": [...]}` (an internal class name), a `BadInput` as a
list `[{"error": ...}]`, an unknown path as plain text. This ASGI middleware rewrites those
error responses (status >= 400) into the one shape; answers that succeed pass untouched.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# pydantic error types -> what to tell the caller (others: pydantic's own message)
_MESSAGES = {
    "missing": "missing field",
    "extra_forbidden": "unknown field",
    "model_type": "expected a JSON object",
    "dict_type": "expected a JSON object",
}


def message(status: int, body: bytes, empty_request: bool = False) -> str:
    """The one-line message of an error response body, whatever its shape."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip() or f"HTTP {status}"
    if isinstance(data, list) and len(data) == 1:  # BentoML's BadInput: [{"error": ...}]
        data = data[0]
    if not isinstance(data, dict):
        return str(data)
    detail = data.get("detail")
    if isinstance(detail, list) and detail:  # a pydantic validation error of the request body
        if empty_request:
            return "the body is empty: send a JSON object"
        return "; ".join(_describe(e) for e in detail[:5] if isinstance(e, dict))
    if isinstance(detail, str):  # FastAPI (/metadata)
        return detail
    return str(data.get("error", data))


def _describe(err: dict) -> str:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.get("loc", ()))
    kind = err.get("type")
    text = _MESSAGES.get(kind, str(err.get("msg", kind)))
    return f"{where.lstrip('.') or 'body'}: {text}"


class OneErrorShape:
    """ASGI middleware (`Service.add_asgi_middleware(OneErrorShape)`). Error bodies are small
    (messages name at most five problems): they are held whole and rewritten."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "HEAD":  # HEAD: no body to rewrite
            await self.app(scope, receive, send)
            return
        size, start, held = 0, None, []

        async def counting() -> Message:
            nonlocal size
            msg = await receive()
            size += len(msg.get("body", b""))
            return msg

        async def reshaping(msg: Message) -> None:
            nonlocal start
            if msg["type"] == "http.response.start" and msg["status"] >= 400:
                start = msg
                return
            if start is None or msg["type"] != "http.response.body":
                await send(msg)
                return
            held.append(msg.get("body", b""))
            if msg.get("more_body", False):
                return
            status = start["status"]
            text = message(status, b"".join(held), empty_request=size == 0)
            body = json.dumps({"error": text}, ensure_ascii=False).encode()
            headers = [
                (k, v)
                for k, v in start.get("headers", [])
                if k.lower() not in (b"content-type", b"content-length")
            ]
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, counting, reshaping)
