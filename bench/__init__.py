"""Benchmarks: hedge latency, throughput and footprint against the venue simulators (never run by the tests)."""
