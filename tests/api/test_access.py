"""Access control: the DNS-rebinding defence (Host, Origin) and the bearer tokens."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import LOCAL, PORT, REMOTE, TOKENS, bearer, client_for
from tests.api.test_contract import assert_problem
from tribune.api import Tokens
from tribune.errors import ConfigError

ACTIVATE = "/api/v1/scenes/class-end/activate"


async def test_a_foreign_host_is_misdirected(local: httpx.AsyncClient) -> None:
    response = await local.post(ACTIVATE, headers={"Host": "evil.example"})
    assert_problem(response, 421, "evil.example")
    for host in ("evil.example:8080", "127.0.0.1:9999", "localhost.evil.example", "[::1]:1", ""):
        assert_problem(await local.get("/api/v1/room", headers={"Host": host}), 421)
    # A token does not make a rebound name acceptable.
    response = await local.get(
        "/api/v1/room", headers={"Host": "evil.example", **bearer(TOKENS.api)}
    )
    assert_problem(response, 421)


async def test_local_hosts_and_configured_names_are_this_service(
    local: httpx.AsyncClient, remote: httpx.AsyncClient
) -> None:
    for host in (f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"[::1]:{PORT}", f"LOCALHOST.:{PORT}"):
        response = await local.get("/api/v1/room", headers={"Host": host})
        assert response.status_code == 200, host
    # allowed_hosts = ["lectern-12", "10.0.0.5:80"]: a bare name on the serving port.
    token = bearer(TOKENS.api)
    ok = await remote.get("/api/v1/room", headers={"Host": f"lectern-12:{PORT}", **token})
    assert ok.status_code == 200
    assert_problem(
        await remote.get("/api/v1/room", headers={"Host": "lectern-12:81", **token}), 421
    )
    proxied = await remote.get("/api/v1/room", headers={"Host": "10.0.0.5", **token})
    assert proxied.status_code == 200


async def test_a_foreign_origin_is_forbidden(local: httpx.AsyncClient) -> None:
    # What a page on evil.example does in the lectern PC's browser: a simple cross-site POST.
    for origin in (
        "http://evil.example",
        f"http://evil.example:{PORT}",
        "null",
        f"https://127.0.0.1:{PORT}.evil.example",
        "http://127.0.0.1:9999",
        f"file://127.0.0.1:{PORT}",
    ):
        response = await local.post(ACTIVATE, headers={"Origin": origin})
        assert_problem(response, 403, "Origin")
    panel = await local.post(ACTIVATE, headers={"Origin": f"http://127.0.0.1:{PORT}"})
    assert panel.status_code == 202
    named = await local.post(ACTIVATE, headers={"Origin": f"http://localhost:{PORT}"})
    assert named.status_code == 202


async def test_remote_clients_need_a_token(remote: httpx.AsyncClient) -> None:
    for method, url in (
        ("GET", "/api/v1/room"),
        ("POST", ACTIVATE),
        ("GET", "/api/v1/metrics"),
        ("GET", "/api/v1/health"),
    ):
        response = await remote.request(method, url)
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await remote.get("/api/v1/room", headers=bearer("guess"))
    assert_problem(wrong, 401, "unknown token")
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    basic = await remote.get("/api/v1/room", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert_problem(basic, 401, "Bearer")
    # The OpenAPI document is public; the Host check still applies to it.
    assert (await remote.get("/api/v1/openapi.json")).status_code == 200


async def test_the_api_token_works_remotely(remote: httpx.AsyncClient) -> None:
    response = await remote.post(ACTIVATE, headers=bearer(TOKENS.api))
    assert response.status_code == 202
    assert (await remote.get("/api/v1/room", headers=bearer(TOKENS.api))).status_code == 200


async def test_a_wrong_token_is_refused_even_from_loopback(local: httpx.AsyncClient) -> None:
    assert_problem(await local.post(ACTIVATE, headers=bearer("guess")), 401)


async def test_loopback_with_a_non_local_host_is_not_the_panel(app: FastAPI) -> None:
    # A page that rebinds a name we were told to accept still needs a token.
    async with client_for(app, LOCAL) as client:
        response = await client.get("/api/v1/room", headers={"Host": f"lectern-12:{PORT}"})
        assert_problem(response, 401)


async def test_technician_endpoints_need_the_technician_token(
    local: httpx.AsyncClient, remote: httpx.AsyncClient
) -> None:
    url = "/api/v1/devices/projector/reread"
    from_loopback = await local.post(url)
    assert_problem(from_loopback, 401, "technician")
    assert from_loopback.headers["WWW-Authenticate"].startswith("Bearer")
    with_api_token = await remote.post(url, headers=bearer(TOKENS.api))
    assert_problem(with_api_token, 403, "technician")
    assert "insufficient_scope" in with_api_token.headers["WWW-Authenticate"]
    assert_problem(await local.post(url, headers=bearer(TOKENS.api)), 403)
    for client in (local, remote):
        response = await client.post(url, headers=bearer(TOKENS.technician))
        assert response.status_code == 200, response.text


async def test_ipv6_and_mapped_loopback_clients_are_local(app: FastAPI) -> None:
    for address in (("::1", 1234), ("::ffff:127.0.0.1", 1234), ("127.8.9.10", 1)):
        async with client_for(app, address) as client:
            assert (await client.get("/api/v1/room")).status_code == 200, address
    async with client_for(app, REMOTE) as client:
        assert (await client.get("/api/v1/room")).status_code == 401


def test_tokens_are_created_private_and_read_back(tmp_path: Path) -> None:
    tokens = Tokens.load_or_create(tmp_path)
    folder = tmp_path / "tokens"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name, value in (("api", tokens.api), ("technician", tokens.technician)):
        path = folder / f"{name}.token"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text().strip() == value
        assert len(value) >= 40
    assert tokens.api != tokens.technician
    assert Tokens.load_or_create(tmp_path) == tokens
    assert tokens.identify(tokens.api) is not None
    assert tokens.identify(tokens.api + "x") is None
    assert tokens.identify("") is None


def test_loosened_token_files_are_tightened(tmp_path: Path) -> None:
    first = Tokens.load_or_create(tmp_path)
    path = tmp_path / "tokens" / "api.token"
    os.chmod(path, 0o644)
    os.chmod(tmp_path / "tokens", 0o755)
    assert Tokens.load_or_create(tmp_path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tokens").stat().st_mode) == 0o700


def test_an_empty_token_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "tokens").mkdir(mode=0o700)
    (tmp_path / "tokens" / "api.token").write_text("\n")
    with pytest.raises(ConfigError, match=r"api\.token"):
        Tokens.load_or_create(tmp_path)


REBOUND_HOSTS = [
    "[::1]",  # IPv6 loopback without a port: 80, not the serving port
    f"[::1]:{PORT + 1}",
    "::1",  # a bare IPv6 literal carries no port
    f"[::ffff:127.0.0.1]:{PORT}",  # not a loopback name, nor the address we were reached on
    f"[0:0:0:0:0:0:0:1]:{PORT}",  # browsers send the canonical [::1]; anything else is odd
    f"[::1]x:{PORT}",
    "127.0.0.1",  # port 80
    f"127.1:{PORT}",
    f"2130706433:{PORT}",
    f"0x7f.0.0.1:{PORT}",
    f"0.0.0.0:{PORT}",
    f"127.0.0.1.nip.io:{PORT}",  # a public name that resolves to 127.0.0.1: rebinding itself
    f"localhost.evil.example.:{PORT}",
    f"evil.example.:{PORT}",
    f"localhost:{PORT}@evil.example",
    "localhost:",
    f"localhost:+{PORT}",
    f"localhost:{PORT}:{PORT}",
    f"localhost:{PORT}0",
]


async def test_rebound_and_malformed_hosts_are_misdirected(local: httpx.AsyncClient) -> None:
    for host in REBOUND_HOSTS:
        assert_problem(await local.get("/api/v1/room", headers={"Host": host}), 421)
        with_token = {"Host": host, **bearer(TOKENS.api)}
        assert_problem(await local.post(ACTIVATE, headers=with_token), 421)


async def test_the_address_a_request_came_in_on_is_this_service(app: FastAPI) -> None:
    """Reached as http://10.0.0.7:8080 (its LAN address): that literal is this service's Host,
    another address is not, and neither makes a remote client the panel."""
    transport = httpx.ASGITransport(app=app, client=REMOTE)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://10.0.0.7:{PORT}") as lan:
        assert (await lan.get("/api/v1/room", headers=bearer(TOKENS.api))).status_code == 200
        assert_problem(await lan.get("/api/v1/room"), 401)
        other = {"Host": f"10.0.0.8:{PORT}", **bearer(TOKENS.api)}
        assert_problem(await lan.get("/api/v1/room", headers=other), 421)


async def test_more_origins(local: httpx.AsyncClient) -> None:
    for origin in (
        "http://127.0.0.1",  # port 80
        f"http://127.0.0.1:{PORT}/",  # browsers never send a path
        f"ws://127.0.0.1:{PORT}",
        f"http://[::ffff:127.0.0.1]:{PORT}",
        f"http://127.0.0.1.nip.io:{PORT}",
        "NULL",
        "",
    ):
        assert_problem(await local.post(ACTIVATE, headers={"Origin": origin}), 403, "Origin")
    for origin in (f"http://[::1]:{PORT}", f"http://localhost.:{PORT}", f"HTTP://LOCALHOST:{PORT}"):
        response = await local.post(ACTIVATE, headers={"Origin": origin})
        assert response.status_code == 202, origin
