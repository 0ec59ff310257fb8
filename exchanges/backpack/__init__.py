"""Backpack Exchange (the long leg by default): ED25519-signed REST, public websocket, and a simulator."""
