"""Who may call the API: the DNS-rebinding defence and the bearer tokens, as one ASGI middleware.

1. `Host` must name this service — a loopback name, the address the request came in on, or one
   of the config's `api.allowed_hosts` — on the serving port; else 421. A web page that rebinds
   its own name to 127.0.0.1 still sends its own name, so it stops here.
2. A present `Origin` must be `http://` one of those hosts and ports; else 403. This stops a page
   in the lectern PC's browser from posting to the API (a "simple" POST needs no preflight).
3. A bearer token, if given, must be the api or the technician token; else 401. Without one,
   loopback clients that used a loopback Host are the panel (instructor scope); anyone else
   gets 401 on `/api/`. Technician endpoints check the scope themselves (`require_technician`).
4. Unknown tokens are counted per client address (`FailedAttempts`): past the limit, whatever
   token that client presents gets 429 with `Retry-After` until the window passes. Each
   unknown token is logged; a client's first in a window and its lock-out are audited.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from tribune.api.attempts import FailedAttempts
from tribune.api.problems import ApiProblem, problem_response
from tribune.api.technician import TechnicianSessions
from tribune.api.tokens import Grant, Principal, Tokens

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
PRINCIPAL_KEY = "tribune.principal"
ORIGIN_HEADER = "x-tribune-origin"
CHALLENGE = 'Bearer realm="tribune"'
# Readable without a token from anywhere (the Host and Origin checks still apply).
PUBLIC_PATHS = frozenset({"/api/v1/openapi.json", "/api/v1/docs"})

PANEL = Principal("panel", None, Grant.INSTRUCTOR)
UNKNOWN_TOKEN = "unknown token"  # noqa: S105 - an error message, not a secret

log = logging.getLogger(__name__)

# Records an access event in the room's audit log: (result, detail).
AccessAudit = Callable[[str, dict[str, Any]], Awaitable[None]]


class AccessControl:
    """ASGI middleware: Host and Origin checks, then the caller's `Principal` in the scope."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: Tokens,
        allowed_hosts: Sequence[str] = (),
        sessions: TechnicianSessions | None = None,
        attempts: FailedAttempts | None = None,
        audit: AccessAudit | None = None,
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.sessions = sessions  # the panel's PIN sessions: short-lived technician tokens
        self.attempts = attempts if attempts is not None else FailedAttempts()
        self.audit = audit
        self.extra_hosts: dict[str, int | None] = {}
        for entry in allowed_hosts:
            parsed = _split_host(entry)
            if parsed is not None:
                self.extra_hosts[parsed[0]] = parsed[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = _split_host(headers.get("host", ""))
        if host is None or not self._is_this_service(host, scope):
            await _refuse(
                scope, receive, send, 421, "misdirected", "Misdirected request",
                f"Host {headers.get('host', '(none)')!r} is not this service",
            )  # fmt: skip
            return
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, scope):
            await _refuse(
                scope, receive, send, 403, "forbidden-origin", "Forbidden origin",
                f"Origin {origin!r} may not call this service",
            )  # fmt: skip
            return
        client = _client_address(scope)
        wait = self.attempts.retry_after(client) if _presented(scope, headers) else 0
        if wait:
            await _refuse(
                scope, receive, send, 429, "too-many-attempts", "Too many unknown tokens",
                f"too many unknown tokens from {client}: try again in {wait} s",
                {"Retry-After": str(wait)},
            )  # fmt: skip
            return
        principal, error = self._principal(scope, headers, host)
        if error == UNKNOWN_TOKEN:
            await self._unknown_token(client, scope)
        path: str = scope.get("path", "")
        if error or (principal is None and path.startswith("/api/") and path not in PUBLIC_PATHS):
            await _refuse(
                scope, receive, send, 401, "unauthorized", "Unauthorized",
                error or "a bearer token is needed from this address",
                {"WWW-Authenticate": CHALLENGE},
            )  # fmt: skip
            return
        if principal is not None and headers.get(ORIGIN_HEADER, "").lower() == "panel":
            principal = replace(principal, who="panel")
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)

    def _principal(
        self, scope: Scope, headers: Headers, host: tuple[str, int | None]
    ) -> tuple[Principal | None, str | None]:
        presented: str | None = None
        authorization = headers.get("authorization")
        if authorization is not None:
            kind, _, credentials = authorization.partition(" ")
            if kind.lower() != "bearer" or not credentials.strip():
                return None, "use `Authorization: Bearer <token>`"
            presented = credentials.strip()
        elif scope["type"] == "websocket":
            # Browsers cannot set headers on a WebSocket: a remote page passes ?token=.
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if query.get("token"):
                presented = query["token"][0]
        if presented is not None:
            principal = self.tokens.identify(presented)
            if principal is None and self.sessions is not None:
                principal = self.sessions.identify(presented)
            return (principal, None) if principal else (None, UNKNOWN_TOKEN)
        if _is_loopback(scope.get("client")) and host[0] in LOOPBACK_NAMES:
            return PANEL, None
        return None, None

    async def _unknown_token(self, client: str, scope: Scope) -> None:
        """Count, log and (first in a window, and at the lock-out) audit an unknown token."""
        count = self.attempts.failed(client)
        path = scope.get("path", "")
        log.warning("api: unknown bearer token from %s for %s (%d in a row)", client, path, count)
        if self.audit is None or count not in (1, self.attempts.limit):
            return
        detail = {"client": client, "path": path, "failures": count}
        if count == self.attempts.limit:
            wait = self.attempts.retry_after(client)
            log.warning("api: %s locked out for %d s after %d unknown tokens", client, wait, count)
            await self.audit(f"refused: {count} unknown tokens; locked out for {wait} s", detail)
        else:
            await self.audit("failed: unknown token", detail)

    def _is_this_service(self, host: tuple[str, int | None], scope: Scope) -> bool:
        name, port = host
        server = scope.get("server")
        serving_port = server[1] if server else None
        if port is None:
            port = 443 if scope.get("scheme") in ("https", "wss") else 80
        if name in self.extra_hosts:
            wanted = self.extra_hosts[name]
            return port == (wanted if wanted is not None else serving_port) or serving_port is None
        local = name in LOOPBACK_NAMES or (server is not None and _same_address(name, server[0]))
        return local and (serving_port is None or port == serving_port)

    def _origin_allowed(self, origin: str, scope: Scope) -> bool:
        try:
            parts = urlsplit(origin)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        if parts.path or parts.query or parts.fragment:
            return False
        if port is None:
            port = 443 if parts.scheme == "https" else 80
        name = parts.hostname.lower().rstrip(".")
        return self._is_this_service((name, port), {**scope, "scheme": parts.scheme})


def principal_of(connection: HTTPConnection) -> Principal:
    """The caller, as the middleware found it (public paths may have none)."""
    principal: Principal | None = connection.scope.get(PRINCIPAL_KEY)
    if principal is None:
        raise ApiProblem(401, "unauthorized", "Unauthorized", "a bearer token is needed",
                         {"WWW-Authenticate": CHALLENGE})  # fmt: skip
    return principal


def require_technician(connection: HTTPConnection) -> Principal:
    """Dependency: the technician token, from anywhere (loopback included)."""
    principal = connection.scope.get(PRINCIPAL_KEY)
    if principal is None or principal.actor is None:
        raise ApiProblem(
            401, "unauthorized", "Unauthorized", "this endpoint needs the technician token",
            {"WWW-Authenticate": CHALLENGE},
        )  # fmt: skip
    if principal.scope is not Grant.TECHNICIAN:
        raise ApiProblem(
            403, "insufficient-scope", "Technician token needed",
            "this endpoint needs the technician token",
            {"WWW-Authenticate": f'{CHALLENGE}, error="insufficient_scope"'},
        )  # fmt: skip
    assert isinstance(principal, Principal)
    return principal


async def _refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    kind: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
) -> None:
    if scope["type"] == "websocket":
        # Closing before accepting makes the server answer the handshake with 403.
        await send({"type": "websocket.close", "code": 1008, "reason": f"{status} {title}"})
        return
    await problem_response(status, kind, title, detail, headers)(scope, receive, send)


def _split_host(value: str) -> tuple[str, int | None] | None:
    """`name[:port]` or `[v6][:port]` -> (lower-case name, port); None if malformed."""
    value = value.strip().lower()
    if not value:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    elif value.count(":") == 1:
        name, port_text = value.split(":")
    elif ":" in value:
        name, port_text = value, None  # a bare IPv6 address
    else:
        name, port_text = value, None
    name = name.rstrip(".")
    if not name:
        return None
    if port_text is None:
        return name, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return name, int(port_text)


def _presented(scope: Scope, headers: Headers) -> bool:
    """Whether the request carries a credential (a header, or a WebSocket's `?token=`)."""
    if "authorization" in headers:
        return True
    return scope["type"] == "websocket" and b"token=" in scope.get("query_string", b"")


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _is_loopback(client: Any) -> bool:
    if not client:
        return False
    try:
        address = ipaddress.ip_address(str(client[0]))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _same_address(name: str, server_host: Any) -> bool:
    """Whether Host is the IP literal the request came in on (not a rebindable name)."""
    try:
        return ipaddress.ip_address(name) == ipaddress.ip_address(str(server_host))
    except ValueError:
        return False
