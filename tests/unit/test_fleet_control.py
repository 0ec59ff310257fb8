"""`--account` on every control command, and the fleet's merging of its workers' replies (workers faked at the
client call: no process, no socket)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import supervisor
from control.client import ControlUnavailableError
from control.commands import COMMANDS
from control.protocol import CommandError, parse_request, request
from control.render import pairs_table, per_account
from fleet import aggregate
from fleet.aggregate import FleetControl, fleet_totals

# ---- one engine: its own account only ------------------------------------------------------------------------


def engine(account: str = "default") -> Any:
    """Just enough of a Host for `pairs`."""
    repo = SimpleNamespace(list_pairs=lambda *_a, **_k: [])
    return SimpleNamespace(settings=SimpleNamespace(account=account), repo=repo)


def test_every_command_takes_an_account() -> None:
    for name, spec in COMMANDS.items():
        args = {"id": 7} if name in ("pair", "close") else {}
        assert parse_request(request(name, {**args, "account": "acct_1"})) == (name, {**args, "account": "acct_1"})
        assert spec.args[-1].flag == "--account"
    for bad in ("Upper", "", "a" * 33, "a-b", 7):
        with pytest.raises(CommandError) as caught:
            parse_request(request("status", {"account": bad}))
        assert caught.value.code == "bad_request"


def test_a_single_engine_is_account_default() -> None:
    pairs = COMMANDS["pairs"].handler
    assert pairs(engine(), {}) == []
    assert pairs(engine(), {"account": "default"}) == []
    with pytest.raises(CommandError) as caught:
        pairs(engine(), {"account": "alice"})
    assert caught.value.code == "unknown_account" and "'alice'" in caught.value.message


def test_a_worker_serves_its_own_account_only() -> None:
    pairs = COMMANDS["pairs"].handler
    assert pairs(engine(account="alice"), {"account": "alice"}) == []
    with pytest.raises(CommandError):
        pairs(engine(account="alice"), {"account": "default"})


@pytest.mark.usefixtures("root_logging")
def test_the_command_line_sends_the_account(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    def fake_call(_address: str, command: str, args: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        sent.append((command, args))
        return {"ok": True, "data": {"trading": "paused"} if command == "pause" else {"states": {"5": "closed"}}}

    monkeypatch.setattr("control.client.call", fake_call)
    assert supervisor.main(["pause", "--account", "bob", "--reason", "x"]) == 0
    assert supervisor.main(["close", "5", "--account", "bob"]) == 0
    assert sent == [("pause", {"reason": "x", "account": "bob"}), ("close", {"id": 5, "account": "bob"})]
    assert capsys.readouterr().out == "trading paused\npair 5: closed\n"


# ---- a fleet ---------------------------------------------------------------------------------------------------


class Workers:
    """Three workers behind the client call: their replies by (account, command), and every call made."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.replies: dict[tuple[str, str], Any] = {}
        self.rows = [
            {"account": a, "address": f"ipc:///x/{a}.ipc", "state": "running", "pid": 10 + i, "generation": 1,
             "restarts": 0, "last_heartbeat_age_s": 0.1, "restart_in_s": None, "last_exit": None,
             "last_snapshot": {"healthy": True, "problems": []}}
            for i, a in enumerate("abc")
        ]  # fmt: skip

    def status(self) -> list[dict[str, Any]]:
        return self.rows

    def call(self, address: str, cmd: str, args: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        account = address.removeprefix("ipc:///x/").removesuffix(".ipc")
        self.calls.append((account, cmd, args))
        reply = self.replies.get((account, cmd), {"ok": True, "data": {"did": cmd}})
        if isinstance(reply, Exception):
            raise reply
        return reply


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> Workers:
    fake = Workers()
    monkeypatch.setattr(aggregate, "call", fake.call)
    return fake


def not_found(pid: int) -> dict[str, Any]:
    return {"ok": False, "error": {"code": "not_found", "message": f"no pair {pid}"}}


def test_an_account_gets_the_command_unchanged(workers: Workers) -> None:
    control = FleetControl(workers)
    assert control("pause", {"reason": "r", "account": "b"}) == {"did": "pause"}
    assert workers.calls == [("b", "pause", {"reason": "r", "account": "b"})]
    workers.replies["b", "status"] = {"ok": False, "error": {"code": "busy", "message": "try again"}}
    with pytest.raises(CommandError) as caught:
        control("status", {"account": "b"})
    assert (caught.value.code, caught.value.message) == ("busy", "try again")


def test_an_unknown_account_is_refused_before_anything_is_sent(workers: Workers) -> None:
    with pytest.raises(CommandError) as caught:
        FleetControl(workers)("close-all", {"account": "zed"})
    assert caught.value.code == "unknown_account" and "a, b, c" in caught.value.message
    assert workers.calls == []


def test_close_is_sent_to_the_pairs_owner_alone(workers: Workers) -> None:
    for account in "ac":
        workers.replies[account, "pair"] = not_found(9)
    workers.replies["b", "pair"] = {"ok": True, "data": {"pair": {"id": 9}}}
    workers.replies["b", "close"] = {"ok": True, "data": {"states": {"9": "closed"}}}
    assert FleetControl(workers)("close", {"id": 9}) == {"account": "b", "states": {"9": "closed"}}
    assert [c for c in workers.calls if c[1] == "close"] == [("b", "close", {"id": 9})]
    assert sorted(c[0] for c in workers.calls if c[1] == "pair") == ["a", "b", "c"]


def test_a_pair_claimed_twice_is_closed_by_nobody(workers: Workers) -> None:
    workers.replies["c", "pair"] = not_found(9)
    with pytest.raises(CommandError) as caught:
        FleetControl(workers)("close", {"id": 9})
    assert caught.value.code == "internal" and "a, b" in caught.value.message
    assert not [c for c in workers.calls if c[1] == "close"]


def test_a_pair_not_found_while_an_account_is_down_says_so(workers: Workers) -> None:
    workers.replies["a", "pair"] = not_found(9)
    workers.replies["b", "pair"] = not_found(9)
    workers.replies["c", "pair"] = ControlUnavailableError("no reply")
    with pytest.raises(CommandError) as caught:
        FleetControl(workers)("pair", {"id": 9})
    assert caught.value.code == "unavailable" and "account c" in caught.value.message


def test_pairs_are_not_listed_with_an_account_missing(workers: Workers) -> None:
    workers.replies["a", "pairs"] = {"ok": True, "data": [{"id": 1}]}
    workers.replies["b", "pairs"] = ControlUnavailableError("nothing listens")
    workers.replies["c", "pairs"] = {"ok": True, "data": [{"id": 2}]}
    with pytest.raises(CommandError) as caught:
        FleetControl(workers)("pairs", {})
    assert caught.value.code == "unavailable" and "account b (running): nothing listens" in caught.value.message
    workers.replies["b", "pairs"] = {"ok": True, "data": []}
    assert FleetControl(workers)("pairs", {}) == [{"account": "c", "id": 2}, {"account": "a", "id": 1}]


def test_fleet_health_is_read_from_the_heartbeats(workers: Workers) -> None:
    workers.rows[1] = {**workers.rows[1], "state": "backoff"}
    workers.rows[2] = {**workers.rows[2], "last_snapshot": {"healthy": False, "problems": ["actor closer is down"]}}
    health = FleetControl(workers)("health", {})
    assert workers.calls == []  # answered at once, whatever the workers are doing
    assert not health["healthy"]
    assert health["problems"] == ["b: worker backoff", "c: actor closer is down"]
    assert (
        COMMANDS["health"].render(health) == "UNHEALTHY: b backoff (worker backoff); c running (actor closer is down)"
    )


def test_an_action_on_every_account_reports_each(workers: Workers) -> None:
    workers.replies["b", "close-all"] = {"ok": False, "error": {"code": "unavailable", "message": "restarting"}}
    data = FleetControl(workers)("close-all", {})
    assert data == {"accounts": {"a": {"did": "close-all"}, "c": {"did": "close-all"}},
                    "errors": {"b": "restarting (unavailable)"}}  # fmt: skip
    assert COMMANDS["close-all"].failed is not None and COMMANDS["close-all"].failed(data)
    assert not COMMANDS["close-all"].failed({"states": {}})  # a single engine's reply


def test_totals_add_up_the_accounts() -> None:
    def account(state: str, status: dict[str, Any] | None) -> dict[str, Any]:
        return {"process": {"state": state, "restarts": 1}, "status": status, "error": None}

    # a status lists its newest live pairs only: the live count comes from the counts by state
    one = {"pairs": {"open": 1, "naked": 1, "closed": 2}, "open_pairs": [{}], "equity": {"v": "10.5"},
           "unrealized_pnl": "-1"}  # fmt: skip
    two = {"pairs": {"open": 2}, "open_pairs": [{}, {}], "equity": {"v": "1", "w": "2"}, "unrealized_pnl": None}
    totals = fleet_totals({"a": account("running", one), "b": account("running", two), "c": account("backoff", None)})
    assert totals == {
        "accounts": 3, "workers": {"running": 2, "backoff": 1}, "restarts": 3,
        "pairs": {"open": 3, "naked": 1, "closed": 2}, "open_pairs": 4, "equity": {"v": "11.5", "w": "2"},
        "unrealized_pnl": "-1",
    }  # fmt: skip


def test_renders_show_the_account() -> None:
    row = {"id": 1, "market": "BTC", "state": "open", "long": "x", "short": "y", "quantity": "1", "leverage": 2,
           "opened_at": None, "expires_at": None, "closed_at": None, "realized_pnl": None, "points": None}  # fmt: skip
    assert pairs_table([row]).split()[0] == "id"  # one engine's: as before
    assert pairs_table([{"account": "bob", **row}]).split()[:2] == ["account", "id"]
    text = per_account(
        {"accounts": {"a": {"states": {"1": "closed"}}}, "errors": {"b": "down"}}, COMMANDS["close-all"].render
    )
    assert text == "a:\n  pair 1: closed\nb: FAILED: down"


def _status(mode: str) -> dict[str, Any]:
    return {"pairs": {"open": 1}, "open_pairs": [], "trading": {"mode": mode}}


def test_status_comes_from_the_heartbeats_snapshots_until_an_account_is_changed(workers: Workers) -> None:
    clock = [100.0]
    control = FleetControl(workers, clock=lambda: clock[0])
    for row in workers.rows:
        row |= {"status": _status("normal"), "status_age_s": 0.5}
    workers.rows[2] |= {"status_age_s": 9.0}  # too old: asked now
    workers.replies["c", "status"] = {"ok": True, "data": _status("asked")}
    data = control("status", {})
    assert {n: a["status"]["trading"]["mode"] for n, a in data["accounts"].items()} == {
        "a": "normal", "b": "normal", "c": "asked"
    }  # fmt: skip
    assert [c[:2] for c in workers.calls] == [("c", "status")]
    # A pause of b from here: b's snapshot was taken before it, so b is asked; a's still answers.
    control("pause", {"account": "b"})
    workers.replies["b", "status"] = {"ok": True, "data": _status("paused")}
    workers.calls.clear()
    clock[0] = 100.2
    data = control("status", {})
    assert data["accounts"]["b"]["status"]["trading"]["mode"] == "paused"
    assert sorted(c[:2] for c in workers.calls) == [("b", "status"), ("c", "status")]
    # Once a heartbeat took b's status after the pause, the snapshot answers again.
    workers.rows[1] |= {"status": _status("paused"), "status_age_s": 0.1}
    workers.calls.clear()
    clock[0] = 101.0
    control("status", {})
    assert [c[:2] for c in workers.calls] == [("c", "status")]
