"""Hibachi venue: signing, parsing, REST client, websocket feed and simulator."""
