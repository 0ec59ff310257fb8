"""The control server over real pynng sockets: it survives any bytes, serves concurrently, validates args."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pynng
import pytest

from control.client import ControlUnavailableError, call
from control.protocol import CommandError, parse_request
from control.server import ControlServer
from control.spec import MAX_ID, REASON_MAX_CHARS
from tests.helpers import wait_until

TOKEN = "t0ken"
WAIT_S = 10.0  # bounds a failing test only; passing ones never wait this long


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory: ipc socket paths are limited to ~107 bytes, and tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix="pfc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _raw(address: str, payload: bytes) -> dict[str, Any]:
    with pynng.Req0(send_timeout=5000, recv_timeout=5000) as sock:
        sock.dial(address, block=True)
        sock.send(payload)
        return json.loads(sock.recv())


def _echo(cmd: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"cmd": cmd, "args": args}


def _start(address: str, handler: Any = _echo, token: str | None = None, **kw: Any) -> ControlServer:
    return ControlServer(address, handler, token, **kw).start()


@pytest.fixture(params=["ipc", "tcp-with-token"])
def endpoint(request: pytest.FixtureRequest, short_dir: Path) -> Iterator[tuple[str, str | None]]:
    """A running echo server over ipc (no token) or tcp on 127.0.0.1 (with a token)."""
    token = None if request.param == "ipc" else TOKEN
    server = _start(f"ipc://{short_dir}/c.ipc" if token is None else "tcp://127.0.0.1:0", token=token)
    try:
        yield server.address, token
    finally:
        server.stop()


# ---- item 1: any bytes, the serving loop never dies ---------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00",
        b"\xff\xfe garbage",
        b"{",
        b"null",
        b"[" * 30_000,
        b'{"cmd": "health", "x": ' + b"[" * 60 + b"]" * 60 + b"}",
    ],
    ids=["empty", "nul", "binary", "open-brace", "null", "deep-30000", "deep-60"],
)
def test_any_bytes_get_an_error_reply_and_health_is_still_served(
    endpoint: tuple[str, str | None], payload: bytes
) -> None:
    address, token = endpoint
    for _ in range(3):  # more than once: a loop that survives one bad message may not survive the next
        reply = _raw(address, payload)
        assert reply["ok"] is False
        assert reply["error"]["code"] in {"bad_json", "unauthorized"}
    assert call(address, "health", token=token, timeout_s=WAIT_S) == {"ok": True, "data": {"cmd": "health", "args": {}}}


def test_empty_message_without_the_token_is_refused_not_fatal(short_dir: Path) -> None:
    server = _start("tcp://127.0.0.1:0", token=TOKEN)
    try:
        assert _raw(server.address, b"")["error"]["code"] == "bad_json"
        assert call(server.address, "health", token=TOKEN, timeout_s=WAIT_S)["ok"] is True
    finally:
        server.stop()


def test_a_handler_exception_answers_internal_without_its_text_and_logs_a_reference(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(cmd: str, args: dict[str, Any]) -> Any:
        raise RuntimeError("venue said: /home/secret/key.pem rejected")

    server = _start(f"ipc://{short_dir}/c.ipc", failing)
    try:
        with caplog.at_level(logging.ERROR, logger="control.server"):
            reply = call(server.address, "status", timeout_s=WAIT_S)
    finally:
        server.stop()
    error = reply["error"]
    assert error["code"] == "internal"
    assert "secret" not in error["message"] and "RuntimeError" not in error["message"]
    reference = error["message"].rsplit(" ", 1)[-1]
    assert len(reference) >= 8
    assert any(reference in record.getMessage() for record in caplog.records)


def test_an_unserialisable_result_answers_internal(short_dir: Path) -> None:
    server = _start(f"ipc://{short_dir}/c.ipc", lambda cmd, args: {"x": object()})
    try:
        assert call(server.address, "status", timeout_s=WAIT_S)["error"]["code"] == "internal"
        assert call(server.address, "status", timeout_s=WAIT_S)["error"]["code"] == "internal"
    finally:
        server.stop()


# ---- item 2: requests are served concurrently ---------------------------------------------------------------


class Blocking:
    """A handler whose chosen commands block until released; the rest echo at once."""

    def __init__(self, slow: set[str]) -> None:
        self.slow = slow
        self.release = threading.Event()
        self.inside = threading.Semaphore(0)

    def __call__(self, cmd: str, args: dict[str, Any]) -> Any:
        if cmd in self.slow:
            self.inside.release()
            assert self.release.wait(WAIT_S)
        return {"cmd": cmd}

    def entered(self, n: int) -> None:
        """Wait until `n` slow calls are inside the handler."""
        for _ in range(n):
            assert self.inside.acquire(timeout=WAIT_S), "a slow command never reached the handler"


def _in_background(address: str, cmd: str, args: dict[str, Any] | None = None) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call(address, cmd, args, timeout_s=WAIT_S)), daemon=True)
    thread.start()
    return thread, out


def test_health_and_status_are_answered_while_close_all_blocks(short_dir: Path) -> None:
    handler = Blocking({"close-all"})
    server = _start(f"ipc://{short_dir}/c.ipc", handler)
    try:
        thread, out = _in_background(server.address, "close-all")
        handler.entered(1)
        assert call(server.address, "health", timeout_s=WAIT_S)["data"] == {"cmd": "health"}
        assert call(server.address, "status", timeout_s=WAIT_S)["data"] == {"cmd": "status"}
        assert not handler.release.is_set()  # both answered while close-all was still inside
        handler.release.set()
        thread.join(WAIT_S)
        assert out == [{"ok": True, "data": {"cmd": "close-all"}}]
    finally:
        handler.release.set()
        server.stop()


def test_slow_commands_beyond_their_slots_are_busy_and_health_still_answers(short_dir: Path) -> None:
    handler = Blocking({"close-all", "close", "pause"})
    server = _start(f"ipc://{short_dir}/c.ipc", handler)
    try:
        running = [_in_background(server.address, "close-all") for _ in range(server.slow_slots)]
        handler.entered(server.slow_slots)
        busy = call(server.address, "close", {"id": 1}, timeout_s=WAIT_S)
        assert busy["error"]["code"] == "busy"
        assert call(server.address, "pause", timeout_s=WAIT_S)["error"]["code"] == "busy"
        assert call(server.address, "health", timeout_s=WAIT_S)["ok"] is True
        assert call(server.address, "status", timeout_s=WAIT_S)["ok"] is True
        handler.release.set()
        for thread, out in running:
            thread.join(WAIT_S)
            assert out == [{"ok": True, "data": {"cmd": "close-all"}}]
        assert call(server.address, "close", {"id": 1}, timeout_s=WAIT_S)["ok"] is True  # slots given back
    finally:
        handler.release.set()
        server.stop()


def test_health_is_answered_when_every_other_slot_is_taken(short_dir: Path) -> None:
    handler = Blocking({"status", "pairs", "close-all"})
    server = _start(f"ipc://{short_dir}/c.ipc", handler, workers=4, slow_slots=1)
    try:
        running = [_in_background(server.address, "close-all")]
        handler.entered(1)
        running += [_in_background(server.address, "status") for _ in range(server.workers - 2)]
        handler.entered(server.workers - 2)
        assert call(server.address, "pairs", timeout_s=WAIT_S)["error"]["code"] == "busy"
        assert call(server.address, "health", timeout_s=WAIT_S)["ok"] is True
        handler.release.set()
        for thread, out in running:
            thread.join(WAIT_S)
            assert out and out[0]["ok"] is True
    finally:
        handler.release.set()
        server.stop()


def test_stop_ends_every_worker_and_frees_the_address(short_dir: Path) -> None:
    address = f"ipc://{short_dir}/c.ipc"
    server = _start(address)
    assert call(address, "health", timeout_s=WAIT_S)["ok"] is True
    server.stop()
    with pytest.raises(ControlUnavailableError):
        call(address, "health", timeout_s=1)
    again = _start(address)  # AddressInUse here would mean the old socket is still open
    try:
        assert call(address, "health", timeout_s=WAIT_S)["ok"] is True
    finally:
        again.stop()


def test_idle_workers_wait_without_waking_and_stop_ends_them_while_one_inside_a_command_answers(
    short_dir: Path,
) -> None:
    handler = Blocking({"close-all"})
    server = _start(f"ipc://{short_dir}/c.ipc", handler)
    stopper = threading.Thread(target=server.stop, daemon=True)
    try:
        # No receive timeout: an idle worker sleeps until a request comes or `stop` closes its context.
        assert server._sock.recv_timeout == -1
        thread, out = _in_background(server.address, "close-all")
        handler.entered(1)
        stopper.start()
        wait_until(lambda: server.serving == 1, what="every idle worker ended by the stop")
        handler.release.set()
        thread.join(WAIT_S)
        stopper.join(WAIT_S)
        assert out == [{"ok": True, "data": {"cmd": "close-all"}}]  # the command inside was let finish
        assert server.serving == 0
    finally:
        handler.release.set()
        if not stopper.is_alive():
            server.stop()


# ---- the client ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reply", [b"", b"not json", b"\xff", b"[1]", b'{"data": 1}', b'{"ok": true}', b"[" * 30_000])
def test_client_reports_a_reply_that_is_not_a_control_reply(short_dir: Path, reply: bytes) -> None:
    address = f"ipc://{short_dir}/odd.ipc"
    with pynng.Rep0(listen=address, recv_timeout=int(WAIT_S * 1000)) as sock:
        ctx = sock.new_context()

        def answer() -> None:
            ctx.recv_msg()
            ctx.send(reply)

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(ControlUnavailableError, match="malformed reply"):
            call(address, "status", timeout_s=WAIT_S)
        thread.join(WAIT_S)
        ctx.close()


def test_client_times_out_on_a_server_that_never_answers(short_dir: Path) -> None:
    address = f"ipc://{short_dir}/mute.ipc"
    with pynng.Rep0(listen=address), pytest.raises(ControlUnavailableError, match="no reply"):
        call(address, "status", timeout_s=0.2)


# ---- item 3: arguments are validated before the handler sees them ------------------------------------------


def _req(cmd: str, args: Any) -> bytes:
    return json.dumps({"cmd": cmd, "args": args}).encode()


def _refused(raw: bytes) -> CommandError:
    with pytest.raises(CommandError) as info:
        parse_request(raw)
    return info.value


@pytest.mark.parametrize(
    "value",
    [MAX_ID + 1, 2**63, 2**64, str(2**63), "9" * 5000, 0, -1, "-1", "+1", "0x1", True, 1.5, 1e3, "1e3", None, [],
     {}, "", " 1", "١٢"],
)  # fmt: skip
def test_bad_ids_are_refused_naming_the_field(value: Any) -> None:
    for cmd in ("pair", "close"):
        error = _refused(_req(cmd, {"id": value}))
        assert (error.code, "id" in error.message) == ("bad_request", True)


def test_a_missing_id_is_refused() -> None:
    error = _refused(_req("close", {}))
    assert error.code == "bad_request" and '"id"' in error.message


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (MAX_ID, MAX_ID), ("42", 42), ("007", 7)])
def test_good_ids_reach_the_handler_as_ints(value: Any, expected: int) -> None:
    assert parse_request(_req("pair", {"id": value})) == ("pair", {"id": expected})


def test_a_huge_integer_literal_is_refused_not_internal() -> None:
    raw = b'{"cmd": "pair", "args": {"id": ' + b"9" * 5000 + b"}}"
    assert _refused(raw).code in {"bad_json", "bad_request"}


@pytest.mark.parametrize(
    "reason", ["x" * (REASON_MAX_CHARS + 1), "line\nbreak", "\x1b[31mred", "tab\there", 5, ["r"], {"r": 1}]
)
def test_bad_pause_reasons_are_refused(reason: Any) -> None:
    error = _refused(_req("pause", {"reason": reason}))
    assert error.code == "bad_request" and "reason" in error.message


@pytest.mark.parametrize("reason", ["x" * REASON_MAX_CHARS, "maintenance window", "", "café déjà vu"])
def test_good_pause_reasons_pass(reason: str) -> None:
    assert parse_request(_req("pause", {"reason": reason})) == ("pause", {"reason": reason})


@pytest.mark.parametrize("state", ["x" * 100, 3, None, ["open"], "op\nen"])
def test_bad_states_are_refused(state: Any) -> None:
    error = _refused(_req("pairs", {"state": state}))
    assert error.code == "bad_request" and "state" in error.message


def test_a_state_is_handed_over_and_unknown_args_are_refused() -> None:
    assert parse_request(_req("pairs", {"state": "open"})) == ("pairs", {"state": "open"})
    assert parse_request(_req("pairs", {})) == ("pairs", {})
    for cmd, args in [("status", {"id": 1}), ("pause", {"id": 1}), ("pair", {"id": 1, "force": True})]:
        error = _refused(_req(cmd, args))
        assert error.code == "bad_request"
        assert ("force" if "force" in args else "id") in error.message


@pytest.mark.parametrize("depth", [20, 900, 30_000])
def test_deep_nesting_is_bad_json(depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    assert _refused(b'{"cmd": "status", "x": ' + nested + b"}").code == "bad_json"
    assert _refused(b'{"cmd": "status", "args": {"reason": ' + nested + b"}}").code == "bad_json"


def test_a_failure_outside_the_handler_still_answers_and_no_worker_dies(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server = _start(f"ipc://{short_dir}/c.ipc", workers=3, slow_slots=1)
    real = server.reply_to
    failures = iter(range(6))  # more failures than workers: each must survive its own

    def flaky(raw: bytes) -> bytes:
        if next(failures, None) is not None:
            raise MemoryError("payload-marker")
        return real(raw)

    monkeypatch.setattr(server, "reply_to", flaky)
    try:
        with caplog.at_level(logging.WARNING, logger="control.server"):
            replies = [_raw(server.address, b'{"cmd": "health", "pad": "payload-marker"}') for _ in range(6)]
        assert [r["error"]["code"] for r in replies] == ["internal"] * 6
        assert call(server.address, "health", timeout_s=WAIT_S)["ok"] is True
    finally:
        server.stop()
    assert caplog.records and not any("payload-marker" in r.getMessage() for r in caplog.records)


def test_a_token_with_a_lone_surrogate_is_unauthorized_not_internal() -> None:
    raw = b'{"cmd": "health", "token": "\\ud800"}'  # valid JSON; not encodable as UTF-8
    with pytest.raises(CommandError) as caught:
        parse_request(raw, "t" * 40)
    assert caught.value.code == "unauthorized"
