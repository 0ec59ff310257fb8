"""Operations: the container files, configuration by environment alone, JSON logs, and secrets that never
appear in any output or in the database."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]

# As long as real ones (config refuses shorter), so the scrubber is tested on realistic values.
SECRETS = {
    "APP__BACKPACK__API_KEY": "bpKEY-3c1d9e2f7a6b5c4d-1122334455667788aabbccdd",
    "APP__BACKPACK__API_SECRET": "bpSECRET-9f8e7d6c5b4a3210-1122334455667788aabbcc",
    "APP__HIBACHI__API_KEY": "hbKEY-1a2b3c4d5e6f7a8b",
    "APP__HIBACHI__HMAC_SECRET": "hbHMAC-0f1e2d3c4b5a6978-1122334455667788aabb",
    "APP__CONTROL__TOKEN": "ctlTOKEN-5566778899aabb-1122334455667788",
    "APP__ALERTS__TELEGRAM_BOT_TOKEN": "123456:tgTOKEN-ABCdefGHI-1122334455667788",
    "APP__ALERTS__WEBHOOK_URL": "http://127.0.0.1:9/hook/whTOKEN-99887766",
}


def test_dockerfile_runs_as_non_root_with_a_health_check_and_sigterm() -> None:
    text = (ROOT / "Dockerfile").read_text()
    instructions = [line.split(maxsplit=1) for line in text.splitlines() if line and line[0].isupper()]
    assert instructions[0][0] == "FROM" and instructions[0][1].startswith("python:3.11-slim")
    assert re.search(r"^USER farmer$", text, re.MULTILINE)
    assert re.search(r'^VOLUME \["/data"\]$', text, re.MULTILINE)
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.MULTILINE)
    assert "HEALTHCHECK" in text and 'CMD ["python", "/app/supervisor.py", "health"]' in text
    assert "pyproject.toml" in text and "APP__DATA_DIR=/data" in text


def test_compose_file_parses_with_restart_env_file_volume_and_healthcheck() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = compose["services"]["perp-farmer"]
    assert service["restart"] == "unless-stopped"
    assert service["env_file"][0]["path"] == ".env"
    assert service["volumes"] == ["perp-farmer-data:/data"] and "perp-farmer-data" in compose["volumes"]
    assert service["healthcheck"]["test"] == ["CMD", "python", "/app/supervisor.py", "health"]
    assert service["stop_signal"] == "SIGTERM"


def test_env_only_configuration_json_logs_and_no_secret_anywhere(tmp_path: Path) -> None:
    data = Path(os.environ.get("TMPDIR", "/tmp")) / f"pf-ops-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APP__")}
    env |= SECRETS | {
        "APP__DATA_DIR": str(data),
        "APP__LOG__FORMAT": "json",
        "APP__LOG__LEVEL": "DEBUG",
        "APP__HIBACHI__KEY_TYPE": "hmac",
        "APP__HIBACHI__ACCOUNT_ID": "42",
        "APP__ALERTS__TELEGRAM_CHAT_ID": "7",
        "APP__ALERTS__TELEGRAM_API_URL": "http://127.0.0.1:9",
        "APP__TRADING__MIN_DURATION_HOURS": "0.0005",
        "APP__TRADING__MAX_DURATION_HOURS": "0.0005",
        "APP__TRADING__COOLDOWN_MIN_S": "0",
        "APP__TRADING__COOLDOWN_MAX_S": "0",
        "APP__MONITOR__INTERVAL_S": "0.5",
    }
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "supervisor.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def closed_pair() -> bool:
            out = subprocess.run(
                [sys.executable, str(ROOT / "supervisor.py"), "pairs", "--json", "--state", "closed"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            return out.returncode == 0 and len(json.loads(out.stdout)) >= 1

        wait_until(closed_pair, 40, "a pair opened and closed, configured by environment only")
        status = subprocess.run(
            [sys.executable, str(ROOT / "supervisor.py"), "status", "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        without_token = subprocess.run(
            [sys.executable, str(ROOT / "supervisor.py"), "status"],
            cwd=tmp_path,
            env={k: v for k, v in env.items() if k != "APP__CONTROL__TOKEN"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert without_token.returncode == 1 and "unauthorized" in without_token.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr[-2000:]
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert lines and all({"timestamp", "level", "logger", "actor", "message"} <= set(line) for line in lines)
    assert any(line.get("pair") is not None for line in lines)  # pair transitions carry their pair
    everything = stdout + stderr + status.stdout + status.stderr + without_token.stdout + without_token.stderr
    for path in data.rglob("*"):
        if path.is_file() and not path.name.endswith(".ipc"):
            everything += path.read_bytes().decode("latin-1")
    for name, secret in SECRETS.items():
        assert secret not in everything, f"{name} leaked"
