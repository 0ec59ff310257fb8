"""Hibachi simulator: account, history and capital routes. Withdrawals and transfers are plain balance
movements (no chain): checked, signed, booked in the capital history."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.clock import Clock
from core.domain import Side
from exchanges.base import OrderType
from exchanges.hibachi.sim_wire import SimContract, SimCredentials, error, s, us, usd
from exchanges.sim import params as prm
from exchanges.sim.engine import SimEngine, SimOrder
from exchanges.sim.http import Response

USDT_ASSET_ID = 1  # spec §2 (CCXT)
HISTORY_STATUS = {"FILLED": "Filled", "CANCELLED": "Cancelled", "REJECTED": "Rejected"}


@dataclass(frozen=True)
class CapitalMove:
    """One deposit, withdrawal or transfer, as /capital/history lists it."""

    id: int
    kind: str  # deposit | withdrawal | transfer-in | transfer-out
    quantity: Decimal
    ts: datetime
    counterparty: dict[str, Any]


class HibachiAccountApi:
    """Mixin for HibachiSim."""

    engine: SimEngine
    clock: Clock
    contracts: dict[str, SimContract]
    _accounts: dict[int, SimCredentials]
    capital_moves: dict[int, list[CapitalMove]]

    # Provided by HibachiSim and HibachiOrderApi.
    _check_signed: Callable[[SimCredentials, bytes, Any, int | None], Response | None]
    wire_status: Callable[[SimOrder], str]

    def account_routes(self) -> dict[tuple[str, str], Callable[[SimCredentials, dict[str, Any]], Response]]:
        """(method, path) -> handler."""
        return {
            ("GET", "/trade/account/info"): self._account_info,
            ("GET", "/trade/account/trades"): self._trades,
            ("GET", "/trade/account/settlements_history"): self._settlements,
            ("GET", "/trade/orders/history"): self._orders_history,
            ("POST", "/trade/account/leverage"): self._leverage,
            ("GET", "/capital/balance"): self._balance,
            ("GET", "/capital/history"): self._capital_history,
            ("GET", "/capital/deposit-info"): self._deposit_info,
            ("POST", "/capital/withdraw"): self._withdraw,
            ("POST", "/capital/transfer"): self._transfer,
        }

    def _by_contract_id(self, p: dict[str, Any]) -> str | None:
        contract_id = prm.integer(p, "contractId", high=2**32 - 1)
        if contract_id is None:
            return None
        for symbol, c in self.contracts.items():
            if c.id == contract_id:
                return symbol
        raise prm.ParamError(f"Invalid contractId: {contract_id}")

    # ---- account ----------------------------------------------------------------------------------------

    def _account_info(self, creds: SimCredentials, _p: dict[str, Any]) -> Response:
        e, acc = self.engine, creds.account
        positions = []
        for symbol, pos in acc.positions.items():
            if not pos.quantity:
                continue
            mark = e.mark(symbol)
            qty = abs(pos.quantity)
            positions.append({
                "symbol": symbol, "direction": "Long" if pos.quantity > 0 else "Short", "quantity": s(qty),
                "entryNotional": usd(pos.entry_price * qty), "notionalValue": usd(mark * qty),
                "openPrice": s(pos.entry_price), "markPrice": s(mark),
                "unrealizedTradingPnl": usd((mark - pos.entry_price) * pos.quantity),
                "unrealizedFundingPnl": "0",
            })  # fmt: skip
        equity = e.equity(acc)
        initial = e.initial_requirement(acc)
        unrealized = e.unrealized(acc)
        open_notional = sum(
            ((o.quantity - o.filled) * (o.price or e.mark(o.symbol)) for o in acc.orders.values()
             if not o.status.is_final and not o.reduce_only), Decimal(0),
        )  # fmt: skip
        return Response(200, {
            "balance": usd(equity), "maximalWithdraw": usd(max(Decimal(0), equity - initial)),
            "assets": [{"symbol": "USDT", "quantity": usd(acc.collateral)}], "numFreeTransfersRemaining": 100,
            "positions": positions, "totalPositionNotional": usd(e.exposure(acc)),
            "totalOrderNotional": usd(open_notional), "totalUnrealizedPnl": usd(unrealized),
            "totalUnrealizedTradingPnl": usd(unrealized), "totalUnrealizedFundingPnl": "0",
            "initialMargin": usd(initial), "maintenanceMargin": usd(e.maintenance_requirement(acc)),
            "leverages": [{"symbol": x, "initialMarginRate": s(r)} for x, r in acc.market_imr.items()],
            # The rates this account's fills pay (the venue may send null here; clients fall back to feeConfig).
            "tradeMakerFeeRate": format(e.maker_fee, ".8f"), "tradeTakerFeeRate": format(e.taker_fee, ".8f"),
        })  # fmt: skip

    def _balance(self, creds: SimCredentials, _p: dict[str, Any]) -> Response:
        return Response(200, {"balance": usd(self.engine.equity(creds.account))})

    def _leverage(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        symbol = prm.text(p, "symbol", required=True)
        if symbol not in self.contracts:
            raise prm.ParamError(f"Invalid symbol: {symbol}")
        rate = prm.decimal(p, "initialMarginRate", required=True, positive=True)
        self.engine.set_market_imr(creds.account, symbol, rate)
        return Response(200, {"status": "success"})

    def _trades(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        symbol = self._by_contract_id(p)
        max_id = prm.integer(p, "maxJournalId")
        limit = prm.integer(p, "limit", default=100, low=1, high=100)
        side = prm.choice(p, "side", ("Buy", "Sell", "BID", "ASK"))
        start, end = prm.integer(p, "startTime"), prm.integer(p, "endTime")
        out = []
        for f in reversed(creds.account.fills):
            ours = f.side is Side.LONG
            stamp = int(f.ts.timestamp())
            if symbol not in (None, f.symbol) or (max_id is not None and f.trade_id > max_id):
                continue
            if side is not None and (side in ("Buy", "BID")) != ours:
                continue
            if (start is not None and stamp < start) or (end is not None and stamp > end):
                continue
            out.append({
                "id": f.trade_id, "symbol": f.symbol, "side": "Buy" if ours else "Sell",
                "orderType": creds.account.orders[f.order_id].order_type.value.upper(),
                "price": s(f.price), "quantity": s(f.quantity), "fee": s(f.fee),
                "realizedPnl": s(f.realized_pnl), "timestamp": stamp,
                "timestamp_ns_partial": f.ts.microsecond * 1000, "isTaker": not f.is_maker,
                "bidOrderId": int(f.order_id) if ours else None, "askOrderId": None if ours else int(f.order_id),
                "bidAccountId": creds.account_id if ours else None,
                "askAccountId": None if ours else creds.account_id,
            })  # fmt: skip
        return Response(200, {"trades": out[:limit]})

    def _settlements(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        symbol = self._by_contract_id(p)
        limit = prm.integer(p, "limit", default=100, low=1, high=100)
        page = prm.integer(p, "page", default=0)
        items = [f for f in reversed(creds.account.funding) if symbol in (None, f.symbol)]
        return Response(200, {"settlements": [{
            "symbol": f.symbol, "direction": "Long" if f.quantity > 0 else "Short", "quantity": s(abs(f.quantity)),
            "indexPrice": s(f.price), "settledAmount": s(f.amount), "timestamp": int(f.ts.timestamp()),
        } for f in prm.page(items, page * limit, limit)]})  # fmt: skip

    def _orders_history(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        start, end = prm.integer(p, "startTime"), prm.integer(p, "endTime")
        symbols = prm.text(p, "marketSymbols")
        side = prm.choice(p, "side", ("buy", "sell"))
        wanted = prm.choice(p, "status", ("filled", "cancelled", "partial_cancelled", "rejected"))
        cursor = prm.integer(p, "cursorOrderId")
        rows = []
        for o in reversed(creds.account.orders.values()):
            if not o.status.is_final:
                continue
            created = us(o.created_at) // 1000
            status = self.wire_status(o)
            label = "partial_cancelled" if status == "CANCELLED" and o.filled else status.lower()
            if ((start is not None and created < start) or (end is not None and created > end)
                    or (symbols is not None and o.symbol not in symbols.split(","))
                    or (side is not None and (side == "buy") != (o.side is Side.LONG))
                    or wanted not in (None, label) or (cursor is not None and int(o.id) >= cursor)):  # fmt: skip
                continue
            average = o.average_price
            rows.append({
                "orderId": o.id, "symbol": o.symbol, "side": "BID" if o.side is Side.LONG else "ASK",
                "orderType": "MARKET" if o.order_type is OrderType.MARKET else "LIMIT",
                "totalQuantity": s(o.quantity), "filledQuantity": s(o.filled),
                "avgFillPrice": s(average) if average is not None else None, "createdAt": created,
                "closedAt": created, "status": HISTORY_STATUS.get(status, status.title()),
            })  # fmt: skip
        return Response(200, {"hasMore": len(rows) > 100, "orders": rows[:100]})

    # ---- capital ----------------------------------------------------------------------------------------

    def _capital_history(self, creds: SimCredentials, _p: dict[str, Any]) -> Response:
        moves = self.capital_moves.get(creds.account_id, [])
        return Response(200, {"transactions": [{
            "id": m.id, "assetId": USDT_ASSET_ID, "quantity": usd(m.quantity), "status": "completed",
            "timestamp": int(m.ts.timestamp()), "transactionType": m.kind, **m.counterparty,
        } for m in reversed(moves)][:200]})  # fmt: skip

    def _deposit_info(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        prm.text(p, "publicKey", required=True)
        return Response(200, {"depositAddressEvm": "0x" + format(creds.account_id, "040x")})

    def _book_move(self, creds: SimCredentials, kind: str, quantity: Decimal, counterparty: dict[str, Any]) -> None:
        moves = self.capital_moves.setdefault(creds.account_id, [])
        number = sum(len(m) for m in self.capital_moves.values()) + 1
        moves.append(CapitalMove(number, kind, quantity, self.engine.clock.now(), counterparty))
        creds.account.collateral += quantity if kind in ("deposit", "transfer-in") else -quantity
        self.engine.touch(creds.account)

    def _free(self, creds: SimCredentials) -> Decimal:
        return self.engine.equity(creds.account) - self.engine.initial_requirement(creds.account)

    def _withdraw(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        quantity = prm.decimal(p, "quantity", required=True, positive=True)
        max_fees = prm.decimal(p, "maxFees", required=True)
        address = prm.text(p, "withdrawAddress", required=True)
        prm.text(p, "coin")
        prm.text(p, "network")
        raw = address.removeprefix("0x")
        if len(raw) != 40 or any(c not in "0123456789abcdefABCDEF" for c in raw):
            raise prm.ParamError("withdrawAddress must be 20 bytes of hex")
        payload = (struct.pack(">I", USDT_ASSET_ID) + struct.pack(">Q", int(quantity * 10**6))
                   + struct.pack(">Q", int(max_fees * 10**6)) + bytes.fromhex(raw))  # fmt: skip
        refused = self._check_signed(creds, payload, p.get("signature"), None)
        if refused is not None:
            return refused
        if quantity > self._free(creds):
            return error(400, 4, f"Insufficient balance to withdraw {quantity}")
        self._book_move(creds, "withdrawal", quantity, {"withdrawalAddress": "0x" + raw.lower()})
        return Response(200, {})

    def _transfer(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        nonce = prm.integer(p, "nonce", required=True, high=2**64 - 1)
        quantity = prm.decimal(p, "quantity", required=True, positive=True)
        fees = prm.decimal(p, "fees", required=True)
        key_hex = prm.text(p, "dstPublicKey", required=True)
        prm.text(p, "coin")
        raw = key_hex.removeprefix("0x")
        raw = raw[2:] if len(raw) == 130 and raw.startswith("04") else raw
        if len(raw) != 128 or any(c not in "0123456789abcdefABCDEF" for c in raw):
            raise prm.ParamError("dstPublicKey must be an uncompressed secp256k1 key in hex")
        target = next((c for c in self._accounts.values() if c.public_key[1:].hex() == raw.lower()), None)
        if target is None:
            return error(404, 3, "No account holds dstPublicKey")
        # Our reading of spec §2 item 10: fees scaled like maxFeesPercent (x 10^8); the venue leaves it unclear.
        payload = (struct.pack(">QI", nonce, USDT_ASSET_ID) + struct.pack(">Q", int(quantity * 10**6))
                   + bytes.fromhex(raw) + struct.pack(">Q", int(fees * 10**8)))  # fmt: skip
        refused = self._check_signed(creds, payload, p.get("signature"), nonce)
        if refused is not None:
            return refused
        if quantity > self._free(creds):
            return error(400, 4, f"Insufficient balance to transfer {quantity}")
        self._book_move(creds, "transfer-out", quantity, {"receivingAccountId": target.account_id})
        self._book_move(target, "transfer-in", quantity, {"srcAccountId": creds.account_id})
        return Response(200, {})
