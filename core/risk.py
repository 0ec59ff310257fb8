"""Risk math on Decimals: leg PnL, collateral ratio, divergence between legs, distance to liquidation.

Pure functions only; the Monitor feeds them venue numbers and decides what to alert on.
"""

from __future__ import annotations

from decimal import Decimal

from core.domain import Side


def unrealized_pnl(side: Side, quantity: Decimal, entry_price: Decimal, mark_price: Decimal) -> Decimal:
    """PnL of a leg at `mark_price`: (mark - entry) * qty for a long, the negative for a short."""
    if quantity < 0:
        raise ValueError(f"quantity must be unsigned, got {quantity}")
    return side.sign * (mark_price - entry_price) * quantity


def collateral_ratio(equity: Decimal, maintenance_requirement: Decimal) -> Decimal | None:
    """Equity over maintenance margin: 1.0 is the liquidation line. None when nothing needs margin."""
    if maintenance_requirement < 0:
        raise ValueError(f"maintenance requirement must be >= 0, got {maintenance_requirement}")
    if maintenance_requirement == 0:
        return None
    return equity / maintenance_requirement


def pnl_divergence(long_pnl: Decimal, short_pnl: Decimal, notional: Decimal) -> Decimal:
    """How far a hedge is from neutral: |long PnL + short PnL| as a fraction of the pair's notional.

    A perfect hedge nets to zero; a basis move between the venues (or a wrong size) shows up here.
    """
    if notional <= 0:
        raise ValueError(f"notional must be > 0, got {notional}")
    return abs(long_pnl + short_pnl) / notional


def liquidation_distance(side: Side, mark_price: Decimal, liquidation_price: Decimal) -> Decimal:
    """Fraction of the mark the price must move against the leg to reach liquidation (<= 0: past it)."""
    if mark_price <= 0:
        raise ValueError(f"mark price must be > 0, got {mark_price}")
    return side.sign * (mark_price - liquidation_price) / mark_price
