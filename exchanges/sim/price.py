"""A seeded random walk per asset that several simulated venues read, so hedged legs move together."""

from __future__ import annotations

import math
import random
import threading
from collections import Counter
from decimal import Decimal

from core.clock import Clock

DEFAULT_PRICES = {"BTC": Decimal(65000), "ETH": Decimal(3500), "SOL": Decimal(150)}
_MAX_STEPS_PER_READ = 5000


class PriceSource:
    """Prices advance one step per `step_s` of clock time; the path depends only on the seed and step count."""

    def __init__(
        self,
        clock: Clock,
        seed: int = 0,
        prices: dict[str, Decimal] | None = None,
        step_s: float = 0.25,
        volatility: float = 0.0002,
    ) -> None:
        self._clock = clock
        self._rng = random.Random(seed)
        self._prices = dict(prices or DEFAULT_PRICES)
        self._step_s = step_s
        self._volatility = volatility
        self._frozen: set[str] = set()
        self._freeze_unfelt: set[str] = set()  # frozen, but no step of the walk held back yet
        self.taken: Counter[str] = Counter()  # faults that altered a price: "freeze" (per freeze), "jump"
        self._steps_done = 0
        self._start = clock.monotonic()
        self._lock = threading.Lock()

    def _advance(self) -> None:
        due = int((self._clock.monotonic() - self._start) / self._step_s)
        pending = due - self._steps_done
        if pending <= 0:
            return
        # A long gap (accelerated time) is taken as one scaled step per asset: same distribution, bounded cost.
        scale = math.sqrt(pending) if pending > _MAX_STEPS_PER_READ else 1.0
        rounds = 1 if pending > _MAX_STEPS_PER_READ else pending
        for _ in range(rounds):
            for asset in sorted(self._prices):
                move = Decimal(repr(round(self._rng.gauss(0.0, self._volatility * scale), 10)))
                if asset not in self._frozen:
                    self._prices[asset] = (self._prices[asset] * (1 + move)).quantize(Decimal("0.00000001"))
                elif asset in self._freeze_unfelt:
                    self._freeze_unfelt.discard(asset)
                    self.taken["freeze"] += 1
        self._steps_done = due

    def price(self, asset: str) -> Decimal:
        """The current price of `asset` (KeyError if unknown)."""
        with self._lock:
            self._advance()
            return self._prices[asset]

    def assets(self) -> list[str]:
        """Every asset priced here."""
        with self._lock:
            return sorted(self._prices)

    def jump(self, asset: str, pct: Decimal) -> Decimal:
        """Move `asset` by `pct` percent at once (fault injection); returns the new price."""
        with self._lock:
            self._advance()
            self._prices[asset] = (self._prices[asset] * (1 + pct / 100)).quantize(Decimal("0.00000001"))
            if pct:
                self.taken["jump"] += 1
            return self._prices[asset]

    def set_price(self, asset: str, price: Decimal) -> None:
        """Pin `asset` at `price` (tests)."""
        with self._lock:
            self._advance()
            self._prices[asset] = price

    def freeze(self, asset: str, frozen: bool = True) -> None:
        """Stop (or restart) the walk of one asset: its feeds then go quiet, as a stuck venue's would."""
        with self._lock:
            self._advance()
            if frozen:
                if asset not in self._frozen:
                    self._freeze_unfelt.add(asset)
                self._frozen.add(asset)
            else:
                self._frozen.discard(asset)
                self._freeze_unfelt.discard(asset)

    def is_frozen(self, asset: str) -> bool:
        """Whether `asset` is frozen."""
        with self._lock:
            return asset in self._frozen
