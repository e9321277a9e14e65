"""`tribune hub` as a process (flags or hub.toml) and `tribune hub token create|list|revoke`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.sync.conftest import Broker, free_port
from tribune.cli import main


def _wait_serving(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the hub did not start serving"
            time.sleep(0.1)


def _token(data_dir: Path, name: str, role: str) -> str:
    command = [sys.executable, "-m", "tribune", "hub", "token", "create", name]
    made = subprocess.run(
        [*command, "--role", role, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "shown only now" in made.stderr
    token = made.stdout.strip()
    assert token.startswith("thub_")
    assert len(token) > 40
    return token


def test_tribune_hub_serves_rooms_to_a_token_holder_and_stops_cleanly(
    broker: Broker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "hub"
    token = _token(data_dir, "leyla", "viewer")
    port = free_port()
    command = [sys.executable, "-m", "tribune", "hub", "--broker", broker.url]
    command += ["--port", str(port), "--data-dir", str(data_dir)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/rooms"
        _wait_serving(process, url)
        refused = httpx.get(url)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert httpx.get(url, headers={"Authorization": "Bearer thub_wrong"}).status_code == 401
        answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        assert answer.json()["rooms"] == []
        page = httpx.get(f"http://127.0.0.1:{port}/")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_tribune_hub_reads_hub_toml_and_flags_override_it(broker: Broker, tmp_path: Path) -> None:
    data_dir = tmp_path / "hub"
    token = _token(data_dir, "admin", "admin")
    port = free_port()
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[hub]\ndata_dir = "{data_dir}"\nport = 1\n\n'
        f'[broker]\nurl = "{broker.url}"\nclient_id = "hub-from-toml"\n'
        "\n[fleet]\nlamp_hours_threshold = 1500\n"
    )
    command = [sys.executable, "-m", "tribune", "hub", "--config", str(config)]
    process = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/rooms"
        _wait_serving(process, url)
        answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert answer.json()["thresholds"] == {"lamp_hours": 1500, "filter_hours": 2000}
    finally:
        process.terminate()
        process.wait(10)


def test_a_bad_hub_toml_names_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('[hub]\nport = 8090\n\n[broker]\nurl = "mqtt://h:1883"\nusrname = "x"\n')
    assert main(["hub", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}:6" in err
    assert "broker.usrname: unknown key (did you mean 'username'?)" in err


def test_a_bad_broker_url_or_none_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hub", "--broker", "http://example.az", "--data-dir", "/nonexistent"]) == 2
    assert "mqtts://host:8883" in capsys.readouterr().err
    assert main(["hub", "--data-dir", "/nonexistent"]) == 2
    assert "give --broker URL or --config hub.toml" in capsys.readouterr().err


def test_tokens_are_listed_without_secrets_and_revoked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    assert main(["hub", "token", "create", "leyla", "--role", "operator", *data]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["hub", "token", "create", "leyla", *data]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["hub", "token", "create", "bad/name", *data]) == 2
    capsys.readouterr()
    assert main(["hub", "token", "list", *data]) == 0
    listed = capsys.readouterr().out
    assert "leyla" in listed
    assert "operator" in listed
    assert token not in listed
    assert token.encode() not in (tmp_path / "hub.db").read_bytes()  # only its hash is kept
    assert main(["hub", "token", "revoke", "leyla", *data]) == 0
    assert main(["hub", "token", "revoke", "leyla", *data]) == 4
