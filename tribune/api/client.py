"""A small blocking client for a running service's technician API (`tribune profile flash`...).

Standard library only (the CLI must not need an HTTP package). Answers are JSON; problems
(`application/problem+json`) become `ServiceProblem` with the status and the problem's kind.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

from tribune.errors import ConfigError, LinkError, TribuneError

DEFAULT_URL = "http://127.0.0.1:8080"
FLASH_SECONDS = 180.0  # a flash probes the device: a slow serial profile takes a while


class ServiceUnreachableError(LinkError):
    """Nothing answers at the service's URL."""


class ServiceProblem(TribuneError):
    """The service answered with a problem: its status, kind and the whole body."""

    def __init__(self, status: int, kind: str, detail: str, body: dict[str, Any]) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind  # after urn:tribune:problem:
        self.detail = detail
        self.body = body


class TechnicianClient:
    """Calls `/api/v1` of a running service with the technician token."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"--url {url!r}: want http://HOST:PORT")
        self.base = url.rstrip("/") + "/api/v1"
        self.token = token
        self.timeout = timeout

    def flash(
        self,
        device: str,
        text: str,
        *,
        filename: str | None = None,
        force: bool = False,
        timeout: float | None = None,
        by: str | None = None,
    ) -> dict[str, Any]:
        """POST /technician/devices/{device}/flash."""
        body: dict[str, Any] = {"profile": text, "force": force}
        for key, value in (("filename", filename), ("timeout", timeout), ("by", by)):
            if value is not None:
                body[key] = value
        path = f"/technician/devices/{quote(device, safe='')}/flash"
        answer: dict[str, Any] = self.call("POST", path, body, timeout=FLASH_SECONDS)
        return answer

    def rollback(self, device: str, *, by: str | None = None) -> dict[str, Any]:
        """POST /technician/devices/{device}/rollback."""
        path = f"/technician/devices/{quote(device, safe='')}/rollback"
        body = {"by": by} if by else {}
        answer: dict[str, Any] = self.call("POST", path, body, timeout=FLASH_SECONDS)
        return answer

    def history(self, profile_id: str) -> dict[str, Any]:
        """GET /technician/profiles/{id}/history."""
        answer: dict[str, Any] = self.call(
            "GET", f"/technician/profiles/{quote(profile_id, safe='')}/history"
        )
        return answer

    def devices(self) -> list[dict[str, Any]]:
        """GET /technician/devices."""
        answer: list[dict[str, Any]] = self.call("GET", "/technician/devices")
        return answer

    def call(
        self, method: str, path: str, body: Any = None, *, timeout: float | None = None
    ) -> Any:
        """One request; the JSON answer, or `ServiceProblem` / `ServiceUnreachableError`."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        # http(s) only: checked in __init__.
        request = urllib.request.Request(self.base + path, data, headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as answer:  # noqa: S310
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise _problem(exc) from None
        except OSError as exc:  # URLError, refused, reset, timeout
            reason = getattr(exc, "reason", exc)
            raise ServiceUnreachableError(
                f"{self.base}: {reason} (is `tribune serve` running there?)"
            ) from None


def _problem(exc: urllib.error.HTTPError) -> ServiceProblem:
    raw = exc.read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    kind = str(body.get("type", "")).removeprefix("urn:tribune:problem:") or "http"
    detail = str(body.get("detail") or exc.reason or f"HTTP {exc.code}")
    return ServiceProblem(exc.code, kind, detail, body)
