"""The request guard: ASGI middleware that refuses a request before BentoML reads or parses it.

Every request but the health checks (/healthz, /readyz, /livez, /metrics) passes, in order:

1. Host: the `Host` header must name an allowed host (`CUSTSEG_ALLOWED_HOSTS`, comma-separated
   names or IPs, `*` for any; default localhost, 127.0.0.1, ::1 and the address the request
   reached, i.e. the bound interface), else 400: a DNS-rebinding page names its own host.
2. API key: with `CUSTSEG_API_KEY` set, the header `x-api-key` must carry it, else 401 (compared
   in constant time; the key is never logged).
3. Origin: a POST (any method but GET/HEAD/OPTIONS) whose `Origin` header is not the server's
   own origin (scheme://Host) is refused with 403 (cross-site request forgery).
4. Content type: such a request must be `application/json`, else 415 (a cross-site form or
   `text/plain` post needs no CORS preflight: refusing them closes that door too).
5. Body size: a `Content-Length` over `CUSTSEG_MAX_BODY_BYTES` (default 16 MiB) gets 413 before
   a byte of the body is read; a body without one (chunked) is counted while it is read and
   refused the same way once past the limit. The body is read here, whole, and only then handed
   to BentoML.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("custseg.serving.guard")

API_KEY_HEADER = "x-api-key"
HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/livez", "/metrics"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def key_matches(expected: str | None, given: str | bytes | None) -> bool:
    """True when no key is required or `given` is the key. Constant time: both are hashed to
    the same length first (compare_digest alone returns at once on a length mismatch, telling
    the key's length), then compared with hmac.compare_digest."""
    if expected is None:
        return True
    if given is None:
        return False
    if isinstance(given, str):
        given = given.encode("utf-8")
    want = hashlib.sha256(expected.encode("utf-8")).digest()
    return hmac.compare_digest(hashlib.sha256(given).digest(), want)


def host_name(value: str) -> str:
    """'Example.COM:3000' -> 'example.com'; '[::1]:3000' -> '::1'; a trailing dot dropped."""
    value = value.strip().lower()
    if value.startswith("["):  # an IPv6 literal, maybe with a port
        return value[1 : value.index("]")] if "]" in value else value
    if value.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        value = value.split(":", 1)[0]
    return value.rstrip(".")


@dataclass(frozen=True)
class GuardConfig:
    api_key: str | None = field(default=None, repr=False)  # never in a log line or repr
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    allowed_hosts: frozenset[str] | None = None  # None: LOCAL_HOSTS and the bound address

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> GuardConfig:
        """CUSTSEG_API_KEY, CUSTSEG_MAX_BODY_BYTES, CUSTSEG_ALLOWED_HOSTS (ValueError naming
        the variable when one is malformed: better at start than at the first request)."""
        raw = environ.get("CUSTSEG_MAX_BODY_BYTES", "").strip()
        try:
            limit = int(raw) if raw else DEFAULT_MAX_BODY_BYTES
        except ValueError:
            limit = 0
        if limit <= 0:
            raise ValueError(f"CUSTSEG_MAX_BODY_BYTES: expected a positive integer, got {raw!r}")
        names = environ.get("CUSTSEG_ALLOWED_HOSTS", "").replace(",", " ").split()
        hosts = frozenset(n if n == "*" else host_name(n) for n in names) or None
        return cls(environ.get("CUSTSEG_API_KEY") or None, limit, hosts)

    def host_allowed(self, host: str, bound: str | None) -> bool:
        if self.allowed_hosts is None:
            return host in LOCAL_HOSTS or (bound is not None and host == host_name(bound))
        return "*" in self.allowed_hosts or host in self.allowed_hosts


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class RequestGuard:
    """ASGI middleware (`Service.add_asgi_middleware(RequestGuard, config=...)`)."""

    def __init__(self, app: ASGIApp, config: GuardConfig | None = None) -> None:
        self.app = app
        self.config = config if config is not None else GuardConfig.from_env()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        try:
            self.check_headers(scope)
            body = await self.read_body(scope, receive)
        except Refused as exc:
            # one line, no header values: the key (right or wrong) never reaches the log
            logger.warning("refused %s %s: %d %s", scope["method"], scope["path"], exc.status, exc)
            await respond(send, exc.status, exc.message)
            return
        if body is None:  # the client went away while sending
            return
        await self.app(scope, replay(body, receive), send)

    def check_headers(self, scope: Scope) -> None:
        headers = _headers(scope)
        hosts = headers.get("host", [])
        if len(hosts) != 1:
            raise Refused(400, "exactly one Host header is required")
        host = host_name(hosts[0])
        server = scope.get("server")
        if not self.config.host_allowed(host, server[0] if server else None):
            raise Refused(400, f"host {host!r} is not allowed (CUSTSEG_ALLOWED_HOSTS)")
        given = headers.get(API_KEY_HEADER, [None])[0]  # the raw bytes again, below
        if not key_matches(self.config.api_key, None if given is None else given.encode("latin-1")):
            raise Refused(401, f"missing or wrong {API_KEY_HEADER} header")
        if scope["method"] in SAFE_METHODS:
            return
        for origin in headers.get("origin", []):
            parts = urlsplit(origin.strip().lower())
            if origin.strip().lower() == "null" or parts.netloc != hosts[0].strip().lower():
                raise Refused(403, "cross-origin requests are not allowed")
        kind = headers.get("content-type", [""])[0].split(";", 1)[0].strip().lower()
        if kind != "application/json":
            raise Refused(415, "Content-Type must be application/json")

    async def read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, refused (413) as soon as it is known to be too long: from its
        Content-Length before reading, else while counting the chunks read."""
        limit = self.config.max_body_bytes
        lengths = set(_headers(scope).get("content-length", []))
        if len(lengths) > 1:
            raise Refused(400, "conflicting Content-Length headers")
        if lengths:
            text = lengths.pop().strip()
            if not text.isdigit():
                raise Refused(400, "malformed Content-Length header")
            if int(text) > limit:
                raise Refused(413, f"request body over the limit of {limit:,} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Refused(413, f"request body over the limit of {limit:,} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _headers(scope: Scope) -> dict[str, list[str]]:
    """Header name (lower case) -> its values, as text (latin-1, as HTTP carries them)."""
    out: dict[str, list[str]] = {}
    for name, value in scope["headers"]:
        out.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return out


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then defers to the server's (for
    the disconnect message)."""
    sent = False

    async def wrapped() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return wrapped


async def respond(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
