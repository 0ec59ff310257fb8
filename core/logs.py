"""Logging set-up: one line per record, as text or JSON, with every configured secret scrubbed.

Secrets are SecretStr and should never reach a log call; the scrubbing filter is the second line of
defence for a secret that leaks through an exception message or a venue's echo of a request.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from core.config import Settings

REDACTED = "**********"
# Fields a caller may attach with `extra={...}` that the JSON format lifts to the top level.
_CONTEXT_FIELDS = ("actor", "pair", "venue")


def secret_values(settings: Settings) -> list[str]:
    """Every secret string in the configuration (non-empty ones only)."""
    found = []
    for section in (settings.backpack, settings.hibachi, settings.control, settings.alerts):
        for value in section.__dict__.values():
            if hasattr(value, "get_secret_value") and value.get_secret_value():
                found.append(value.get_secret_value())
    return found


class RedactingFilter(logging.Filter):
    """Replaces any known secret in a record's final message with asterisks."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """`text` with every secret replaced."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, scrubbed, so later formatting cannot re-expand a secret."""
        if self._secrets:
            record.msg = self.scrub(record.getMessage())
            record.args = None
            if record.exc_info:
                record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, context fields, and `fields` if given."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        payload: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "actor": record.threadName,  # actors run one thread each, named after their class
            "message": record.getMessage(),
        }
        for name in _CONTEXT_FIELDS:
            if hasattr(record, name):
                payload[name] = getattr(record, name)
        if hasattr(record, "fields"):
            payload["fields"] = record.fields
        if record.exc_text or record.exc_info:
            payload["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(payload, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"


QUIET_LIBRARIES = ("websockets", "pynng", "pykka", "urllib3")


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Install one handler on the root logger per the settings; returns it (tests remove it)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.log.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter(secret_values(settings)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log.level)
    # Library chatter (every websocket open/close, nng's background dialer) only when debugging.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler
