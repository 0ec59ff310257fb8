"""Venue-neutral simulator core: prices, matching, margin, funding, liquidation, faults, HTTP and WS serving.

Each venue's `sim.py` is only the wire layer on top (paths, JSON shapes, signatures, error bodies).
"""
