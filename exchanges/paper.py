"""Paper mode: both venue simulators on loopback, moving on one shared price source.

The real clients are then pointed at them, so paper mode runs exactly the code that trades for real.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.clock import Clock
from exchanges.backpack.sim import BackpackSim
from exchanges.hibachi.sim import HibachiSim
from exchanges.sim.price import PriceSource


@dataclass
class PaperVenues:
    """The two running simulators and their shared prices."""

    prices: PriceSource
    backpack: BackpackSim
    hibachi: HibachiSim

    @classmethod
    def start(cls, clock: Clock, *, seed: int = 0, collateral: Decimal = Decimal(10000)) -> PaperVenues:
        """Start both simulators on free loopback ports."""
        prices = PriceSource(clock, seed=seed)
        backpack = BackpackSim(prices, clock, seed=seed, collateral=collateral).start()
        try:
            hibachi = HibachiSim(prices, clock, seed=seed, collateral=collateral).start()
        except BaseException:
            backpack.stop()
            raise
        return cls(prices, backpack, hibachi)

    def stop(self) -> None:
        """Stop both simulators."""
        self.backpack.stop()
        self.hibachi.stop()
