"""Venue adapters: a folder per venue (signing, parse, client, feed, sim) behind one neutral interface."""
