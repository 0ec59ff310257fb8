"""The shipped example files cover every setting, with the defaults the code actually has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from core.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def _leaf_keys(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_leaf_keys(annotation, (*prefix, name)))
        else:
            keys.append((*prefix, name))
    return keys


KEYS = _leaf_keys(Settings)


def test_there_are_many_keys() -> None:
    assert len(KEYS) > 30


def test_config_example_loads_to_the_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(ROOT / "config.example.toml") == load_settings()


@pytest.mark.parametrize("key", KEYS, ids=".".join)
def test_config_example_mentions_every_key_in_its_section(key: tuple[str, ...]) -> None:
    text = (ROOT / "config.example.toml").read_text()
    *section, name = key
    if section:
        header = re.search(rf"^\[{re.escape('.'.join(section))}\]$", text, re.MULTILINE)
        assert header, f"no [{'.'.join(section)}] section"
        body = text[header.end() :].split("\n[", 1)[0]
    else:
        body = text.split("\n[", 1)[0]
    assert re.search(rf"^(# )?{name} = ", body, re.MULTILINE) or (
        name == "markets" and "[[trading.markets]]" in text
    ), f"{'.'.join(key)} missing"


@pytest.mark.parametrize("key", KEYS, ids=".".join)
def test_env_example_mentions_every_key(key: tuple[str, ...]) -> None:
    text = (ROOT / ".env.example").read_text()
    var = "APP__" + "__".join(k.upper() for k in key)
    assert re.search(rf"^# {var}=", text, re.MULTILINE), f"{var} missing"


def test_env_example_values_are_the_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    defaults = load_settings()
    seen = 0
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^# (APP__[A-Z_]+)=(.+)$", line)
        if match:
            monkeypatch.setenv(match.group(1), match.group(2))
            seen += 1
    assert seen > 25
    assert load_settings() == defaults
