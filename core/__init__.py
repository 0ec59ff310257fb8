"""Pure core of perp-farmer: configuration, domain types, risk math, sizing, ids and clocks.

Nothing here does network, database or actor I/O, so all of it is unit-testable without threads.
"""
