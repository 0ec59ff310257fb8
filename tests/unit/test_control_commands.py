"""The command registry is the one place a control command is defined: the wire, the server and the CLI read it."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import supervisor
from control.client import call
from control.commands import COMMANDS, render
from control.protocol import CommandError, parse_request, request
from control.server import ControlServer
from control.spec import Arg, Command, reason_text


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory (ipc socket paths are limited to ~107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="pfr-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _say(_host: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"said": args.get("word", "nothing")}


ECHO = Command(
    "echo",
    "say a word back",
    _say,
    lambda data: f"it said {data['said']}",
    args=(Arg("word", reason_text, "--word", "the word"),),
    failed=lambda data: data["said"] == "nothing",
)


@pytest.fixture
def echo(monkeypatch: pytest.MonkeyPatch) -> Command:
    """A new command, added to the registry and nowhere else."""
    monkeypatch.setitem(COMMANDS, ECHO.name, ECHO)
    return ECHO


def test_the_wire_commands_are_the_ones_clients_know() -> None:
    assert list(COMMANDS) == ["status", "pairs", "pair", "pause", "resume", "close", "close-all", "health"]
    assert {c.name for c in COMMANDS.values() if c.slow} == {"pause", "resume", "close", "close-all"}
    assert [c.name for c in COMMANDS.values() if c.reserved] == ["health"]
    assert {c.name: [a.name for a in c.args] for c in COMMANDS.values()} == {
        "status": ["account"],
        "pairs": ["state", "account"],
        "pair": ["id", "account"],
        "pause": ["reason", "account"],
        "resume": ["limit", "account"],
        "close": ["id", "account"],
        "close-all": ["account"],
        "health": ["account"],
    }


def test_a_command_added_to_the_registry_is_parsed_checked_and_rendered(echo: Command) -> None:
    assert parse_request(request("echo", {"word": "hi"})) == ("echo", {"word": "hi"})
    with pytest.raises(CommandError) as caught:
        parse_request(request("echo", {"words": "hi"}))
    assert caught.value.code == "bad_request" and "allowed: word" in caught.value.message
    with pytest.raises(CommandError) as caught:
        parse_request(request("echo", {"word": "a\nb"}))  # its argument's own check
    assert caught.value.code == "bad_request"
    assert render("echo", {"said": "hi"}) == "it said hi"


def test_a_command_added_to_the_registry_is_served(echo: Command, short_dir: Path) -> None:
    server = ControlServer(f"ipc://{short_dir}/c.ipc", lambda cmd, args: COMMANDS[cmd].handler(None, args)).start()
    try:
        assert call(server.address, "echo", {"word": "hi"}) == {"ok": True, "data": {"said": "hi"}}
    finally:
        server.stop()


@pytest.mark.usefixtures("root_logging")
def test_a_command_added_to_the_registry_is_on_the_command_line(
    echo: Command, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    def fake_call(_address: str, command: str, args: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        sent.append((command, args))
        return {"ok": True, "data": _say(None, args)}

    monkeypatch.setattr("control.client.call", fake_call)
    assert supervisor.main(["echo", "--word", "hi"]) == 0
    assert capsys.readouterr().out == "it said hi\n"
    assert supervisor.main(["echo", "--json"]) == 1  # its `failed` rule decides the exit status
    assert json.loads(capsys.readouterr().out) == {"said": "nothing"}
    assert sent == [("echo", {"word": "hi"}), ("echo", {})]
    assert "say a word back" in supervisor.build_parser().format_help()
