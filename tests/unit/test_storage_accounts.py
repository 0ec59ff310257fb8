"""Several accounts in one database: each engine writes its account on what it creates, reads only its own pairs,
events and flags; a reader for every account (account None) sees them all."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from actors.gate import PAUSE_KEY
from actors.health import HEARTBEAT_KEY
from actors.messages import BeginOpen, CreatePair, Heartbeat, RecordEvent, SetMeta, TransitionPair
from actors.writer import PersistenceWriter
from core.clock import FakeClock
from core.domain import EventLevel, OrderPurpose, PairState, Venue
from core.ids import OrderKey
from core.limits import Limit
from exchanges.registry import client_id_for
from reports import summary
from storage.accounts import meta_key
from storage.errors import NotFoundError
from storage.queries import Queries
from storage.schema import CLIENT_ID_NAMESPACE_KEY, meta
from tests.writing import PLAN

LEVERAGE = ((Venue.BACKPACK, D(2)), (Venue.HIBACHI, D(2)))


def _writer(repo: Queries, clock: FakeClock, account: str) -> PersistenceWriter:
    """A writer for `account`, applied on this thread (as tests/writing.py does for the default one)."""
    return PersistenceWriter("writer", 0, clock, None, db=repo.engine, account=account)


def _two_accounts(repo: Queries, clock: FakeClock) -> tuple[int, int, int]:
    """default: an open pair and a planned one; alpha: an open pair of the same market. Their ids."""
    default, alpha = _writer(repo, clock, "default"), _writer(repo, clock, "alpha")
    mine = default.handle(BeginOpen(PLAN, LEVERAGE)).pair_id
    planned = default.handle(CreatePair(PLAN)).id
    theirs = alpha.handle(BeginOpen(PLAN, LEVERAGE)).pair_id
    for writer, pair_id in ((default, mine), (alpha, theirs)):
        writer.handle(
            TransitionPair(pair_id, PairState.OPENING, PairState.OPEN, "open", changes={"opened_at": clock.now()})
        )
    alpha.handle(RecordEvent(EventLevel.WARNING, "venue_slow", "alpha's venue is slow"))
    return mine, planned, theirs


def test_each_account_reads_only_its_own_pairs(repo: Queries, clock: FakeClock) -> None:
    mine, planned, theirs = _two_accounts(repo, clock)
    alpha, everyone = Queries(repo.engine, account="alpha"), Queries(repo.engine, account=None)
    assert [p.id for p in repo.list_pairs()] == [planned, mine]
    assert [p.id for p in repo.list_active_pairs()] == [planned, mine]
    assert [p.id for p in alpha.list_pairs()] == [theirs]
    assert [p.id for p in everyone.list_pairs()] == [theirs, planned, mine]
    assert {p.id: p.account for p in everyone.list_pairs()} == {theirs: "alpha", planned: "default", mine: "default"}
    assert repo.count_pairs_by_state() == {PairState.OPEN: 1, PairState.PLANNED: 1}
    assert alpha.count_pairs_by_state() == {PairState.OPEN: 1}
    assert everyone.count_pairs_by_state() == {PairState.OPEN: 2, PairState.PLANNED: 1}
    window = (clock.now() - timedelta(hours=1), clock.now() + timedelta(hours=1))
    assert [p.id for p in repo.pairs_open_in_market("BTC", *window)] == [mine]
    assert [p.id for p in alpha.pairs_open_in_market("BTC", *window)] == [theirs]
    assert repo.get_pair(mine).account == "default" and everyone.get_pair(theirs).account == "alpha"
    with pytest.raises(NotFoundError):
        repo.get_pair(theirs)  # another account's pair is not there for this one (a control command's id)
    assert [leg.pair_id for leg in alpha.positions_for_pair(theirs)] == [theirs, theirs]  # ids from its own reads


def test_each_account_reads_only_the_events_its_engine_wrote(repo: Queries, clock: FakeClock) -> None:
    _, _, theirs = _two_accounts(repo, clock)
    alpha, everyone = Queries(repo.engine, account="alpha"), Queries(repo.engine, account=None)
    assert {e.account for e in repo.list_events()} == {"default"}
    assert [e.kind for e in alpha.list_events()] == ["venue_slow", "pair_open", "pair_opening", "pair_planned"]
    assert {e.pair_id for e in alpha.list_events() if e.pair_id is not None} == {theirs}
    assert alpha.count_events_by_level() == {"info": 3, "warning": 1}
    assert repo.count_events_by_level() == {"info": 4}
    assert everyone.count_events_by_level() == {"info": 7, "warning": 1}
    assert len(everyone.list_events()) == 8


def test_flags_are_kept_per_account_and_the_default_account_keeps_the_old_keys(repo: Queries, clock: FakeClock) -> None:
    default, alpha = _writer(repo, clock, "default"), _writer(repo, clock, "alpha")
    alpha.handle(SetMeta(PAUSE_KEY, '{"reason": "alpha only"}'))
    alpha.handle(SetMeta(Limit.MIN_COLLATERAL_RATIO_CLOSE.key, "{}"))  # the longest key, with a 5-letter name
    alpha.handle(Heartbeat(clock.now()))
    default.handle(SetMeta(PAUSE_KEY, '{"reason": "default"}'))
    with repo.engine.connect() as conn:
        keys = set(conn.execute(select(meta.c.key)).scalars())
    assert keys == {
        CLIENT_ID_NAMESPACE_KEY,
        PAUSE_KEY,  # "default"'s: the key a database made before accounts already uses
        "trading.pause@alpha",
        "limits.min_collateral_ratio_close@alpha",
        "engine.heartbeat@alpha",
    }
    assert Queries(repo.engine, account="alpha").get_meta(PAUSE_KEY) == '{"reason": "alpha only"}'
    assert repo.get_meta(PAUSE_KEY) == '{"reason": "default"}'
    assert repo.get_meta(HEARTBEAT_KEY) is None
    assert Queries(repo.engine, account="beta").get_meta(PAUSE_KEY) is None
    alpha.handle(SetMeta(PAUSE_KEY, None))
    assert Queries(repo.engine, account="alpha").get_meta(PAUSE_KEY) is None
    assert repo.get_meta(PAUSE_KEY) == '{"reason": "default"}'


def test_the_client_id_namespace_is_one_for_the_database(repo: Queries, clock: FakeClock) -> None:
    alpha = Queries(repo.engine, account="alpha")
    assert alpha.client_id_namespace == repo.client_id_namespace
    assert meta_key(CLIENT_ID_NAMESPACE_KEY, "alpha") == CLIENT_ID_NAMESPACE_KEY
    opened = _writer(repo, clock, "alpha").handle(BeginOpen(PLAN, LEVERAGE))
    namespace = repo.client_id_namespace  # the database's: pair ids are global, so every account's ids differ
    assert [o.client_id for o in opened.orders] == [
        client_id_for(leg.venue, OrderKey(opened.pair_id, leg.side, OrderPurpose.OPEN, 0), namespace)
        for leg in opened.legs
    ]


def test_an_account_name_must_be_one_the_config_allows(repo: Queries, clock: FakeClock) -> None:
    for bad in ("", "Alpha", "a-b", "x" * 33, "trading.pause"):
        with pytest.raises(ValueError, match="account name"):
            Queries(repo.engine, account=bad)
        with pytest.raises(ValueError, match="account name"):
            _writer(repo, clock, bad)


def test_the_report_reads_every_account_or_one(repo: Queries, clock: FakeClock) -> None:
    mine, planned, theirs = _two_accounts(repo, clock)
    url = repo.engine.url.render_as_string(hide_password=False)
    assert [r.pair for r in summary.load(url)] == [str(mine), str(planned), str(theirs), "total"]
    assert [r.pair for r in summary.load(url, account="alpha")] == [str(theirs), "total"]
    assert [r.pair for r in summary.load(url, account="default")] == [str(mine), str(planned), "total"]


def test_a_report_over_several_accounts_names_each_pairs_account(repo: Queries, clock: FakeClock) -> None:
    _two_accounts(repo, clock)
    url = repo.engine.url.render_as_string(hide_password=False)
    every = summary.load(url)
    assert [r.account for r in every] == ["default", "default", "alpha", "2 accounts"]
    assert list(every[0].fields())[:3] == ["pair", "account", "market"]
    assert summary.as_table(every).splitlines()[0].split()[:3] == ["pair", "account", "market"]
    assert "account" in summary.as_csv(every).splitlines()[0].split(",")
    one = summary.load(url, account="alpha")  # one account: the columns of a single engine's report
    assert [r.account for r in one] == [None, None] and "account" not in one[0].fields()
