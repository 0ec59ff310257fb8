"""Logging set-up: one line per record, as text or JSON, with every configured secret scrubbed.

Secrets are SecretStr and should never reach a log call; scrubbing is the second line of defence for a
secret that leaks through an exception message, a venue's echo of a request or an extra field. The filter
renders the message and exception once, scrubbed; each formatter then scrubs everything it outputs, the
JSON one value by value (extras included, nested or not) before encoding, and both on the final line.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

from core.config import Settings

REDACTED = "**********"
TEXT_FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"
# Fields a caller may attach with `extra={...}` that the JSON format lifts to the top level.
_CONTEXT_FIELDS = ("actor", "pair", "venue")
# A URL's path alone shows up in some errors (requests: "Max retries exceeded with url: /path"); it is
# scrubbed alone only when this long, since a short one ("/hook") is no credential and common text.
MIN_URL_PATH_SCRUBBED = 16


def _url_parts(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    found = [password] if password else []
    return [*found, path] if len(path) >= MIN_URL_PATH_SCRUBBED else found


def secret_values(settings: Settings) -> list[str]:
    """Every secret string in the configuration (non-empty ones, every account's included), plus a secret URL's
    credential parts."""
    found: list[str] = []
    _collect_secrets(settings, found)
    return found


def _collect_secrets(model: BaseModel, found: list[str]) -> None:
    for name, value in model.__dict__.items():
        if isinstance(value, SecretStr) and value.get_secret_value():
            found.append(value.get_secret_value())
            if name.endswith("url"):
                found.extend(_url_parts(value.get_secret_value()))
        # Sections, and lists of them (each account's venue sections hold that account's keys).
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, BaseModel):
                _collect_secrets(item, found)


class Scrubber:
    """Replaces every known secret, at any length, in text and in nested values."""

    def __init__(self, secrets: Iterable[str]) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if secret:
                # As written, and as repr() (%r of a dict) and JSON escape it, should it hold \ or quotes.
                variants |= {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1]}
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted(variants, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def scrub(self, text: str) -> str:
        """`text` with every secret replaced."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def scrub_value(self, value: object) -> object:
        """A JSON-ready copy of `value`: strings scrubbed, containers walked, anything else scrubbed as str."""
        if isinstance(value, str):
            return self.scrub(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {self.scrub(str(k)): self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.scrub_value(v) for v in value]
        return self.scrub(str(value))


class RedactingFilter(logging.Filter):
    """Replaces any known secret in a record's message and exception with asterisks."""

    def __init__(self, secrets: Iterable[str] | Scrubber) -> None:
        super().__init__()
        self._scrubber = secrets if isinstance(secrets, Scrubber) else Scrubber(secrets)

    def scrub(self, text: str) -> str:
        """`text` with every secret replaced."""
        return self._scrubber.scrub(text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, scrubbed, so later formatting cannot re-expand a secret."""
        if self._scrubber:
            record.msg = self.scrub(record.getMessage())
            record.args = None
            if record.exc_info:
                record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


class TextFormatter(logging.Formatter):
    """The text format, with every secret scrubbed from the whole line (message, exception, stack)."""

    def __init__(self, scrubber: Scrubber | None = None, account: str | None = None) -> None:
        # A fleet's workers share the supervisor's output: each line says whose it is.
        super().__init__(TEXT_FORMAT if account is None else TEXT_FORMAT.replace("%(name)s", f"[{account}] %(name)s"))
        self._scrubber = scrubber if scrubber is not None else Scrubber([])

    def format(self, record: logging.LogRecord) -> str:
        """The record as text, scrubbed."""
        return self._scrubber.scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, context fields, and `fields` if given."""

    def __init__(self, scrubber: Scrubber | None = None, account: str | None = None) -> None:
        super().__init__()
        self._scrubber = scrubber if scrubber is not None else Scrubber([])
        self._account = {"account": account} if account is not None else {}

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        payload: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            **self._account,
            "logger": record.name,
            "actor": record.threadName,  # actors run one thread each, named after their class
            "message": record.getMessage(),
        }
        for name in _CONTEXT_FIELDS:
            if hasattr(record, name):
                payload[name] = getattr(record, name)
        if hasattr(record, "fields"):
            payload["fields"] = record.fields
        if record.exc_text:
            payload["exception"] = record.exc_text
        elif record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        # Value by value first (a secret JSON would escape is still whole there), then the line itself.
        return self._scrubber.scrub(json.dumps(self._scrubber.scrub_value(payload), default=str))


QUIET_LIBRARIES = ("websockets", "pynng", "pykka", "urllib3")


def configure_logging(settings: Settings, stream: TextIO | None = None, *, worker: bool = False) -> logging.Handler:
    """Install one handler on the root logger per the settings; returns it (tests remove it). A fleet's
    `worker` labels every line with its account."""
    handler = logging.StreamHandler(stream or sys.stderr)
    scrubber = Scrubber(secret_values(settings))
    account = settings.account if worker else None
    formatter = JsonFormatter if settings.log.format == "json" else TextFormatter
    handler.setFormatter(formatter(scrubber, account))
    handler.addFilter(RedactingFilter(scrubber))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log.level)
    # Library chatter (every websocket open/close, nng's background dialer) only when debugging.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler
