"""Hibachi simulator: one websocket port serving /ws/market, /ws/account and /ws/trade (spec §5).

Wraps the shared SimWsServer: market connections go through its keyed publishing (with per-connection
extras kept in MarketStreams); account and trade connections are authenticated at the handshake and served
by their own session classes. A refused or unknown connection gets one JSON error frame, then close 1008.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from exchanges.hibachi.sim_account_ws import AccountStreams, error_reply
from exchanges.hibachi.sim_market_ws import MarketStreams
from exchanges.hibachi.sim_trade_ws import TradeSessions
from exchanges.hibachi.sim_wire import SimCredentials
from exchanges.sim.http import Response
from exchanges.sim.order_log import order_sender
from exchanges.sim.ws import SimWsServer, WsSession, ws_sender

# (accountId as given in the query, Authorization header) -> the account, or REST's refusal.
Identify = Callable[[str, str], SimCredentials | Response]


class HibachiWsServer(SimWsServer):
    """The simulator's websocket server; `publish`, `subscribers` and `drop_all` concern market connections."""

    def __init__(self, identify: Identify, port: int = 0) -> None:
        self._identify = identify
        self.market: MarketStreams | None = None
        self.accounts: AccountStreams | None = None
        self.trades: TradeSessions | None = None
        super().__init__(port=port, path=None, on_frame=self._on_market)

    def attach(self, market: MarketStreams, accounts: AccountStreams, trades: TradeSessions) -> None:
        """The session handlers (built after this server, which they publish through)."""
        self.market, self.accounts, self.trades = market, accounts, trades

    def _on_market(self, session: WsSession, text: str) -> None:
        assert self.market is not None
        added, removed, reply = self.market.on_message(session.conn, text)
        session.subscribe(added)
        session.unsubscribe(removed)
        if reply is not None:
            session.send(reply)

    def _handle(self, conn: ServerConnection) -> None:
        target = urlsplit(conn.request.path if conn.request is not None else "")
        if target.path == "/ws/market" and self.market is not None:
            try:
                super()._handle(conn)
            finally:
                self.market.forget(conn)
            return
        if target.path not in ("/ws/account", "/ws/trade") or self.accounts is None or self.trades is None:
            self._refuse(conn, error_reply(None, 404, 3, f"No websocket at {target.path}"))
            return
        query = dict(parse_qsl(target.query))
        headers = conn.request.headers if conn.request is not None else {}
        creds = self._identify(query.get("accountId", ""), headers.get("Authorization", ""))
        if isinstance(creds, Response):
            self._refuse(conn, error_reply(None, creds.status, creds.body["errorCode"], creds.body["message"]))
            return
        if target.path == "/ws/account":
            self.accounts.serve(conn, creds)
        else:
            with order_sender(ws_sender(conn)):  # orders placed on this socket are logged as its client's
                self.trades.serve(conn, creds)

    @staticmethod
    def _refuse(conn: ServerConnection, frame: str) -> None:
        try:
            conn.send(frame)
            conn.close(1008, "refused")
        except ConnectionClosed:
            pass
