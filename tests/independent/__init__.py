"""Clients we did not write (ccxt, backpack-exchange-sdk) driven against the standalone simulators."""
