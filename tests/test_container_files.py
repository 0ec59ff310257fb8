"""The container image: local secrets, history, tests and state never reach the build context's COPY.

A path reaches the image when some COPY/ADD source of the Dockerfile names it (or a directory above it) and
.dockerignore does not exclude it. The .dockerignore matcher below follows Docker's rules: patterns are
matched against the path and each of its parents, `*` and `?` stop at `/`, `**` spans directories, a leading
`!` re-includes, and the last pattern that matches decides.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from core.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = str(Settings.model_fields["data_dir"].default)  # "data": the default data directory


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out.append("(?:.*/)?")  # "**/" also matches no directory at all
                i += 1
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def parse_dockerignore(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(re-include?, regex) per pattern line, in order."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:].strip() if negate else line
        line = re.sub(r"/+", "/", line).strip("/")
        line = re.sub(r"^(\./)+", "", line)
        if line in ("", "."):
            continue
        rules.append((negate, _pattern_regex(line)))
    return rules


def _self_and_parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: n + 1]) for n in range(len(parts))]


def excluded(rules: list[tuple[bool, re.Pattern[str]]], path: str) -> bool:
    """Whether .dockerignore keeps `path` (relative, with /) out of the build context."""
    result = False
    for negate, regex in rules:
        if any(regex.fullmatch(p) for p in _self_and_parents(path)):
            result = not negate
    return result


def copy_sources(dockerfile: str) -> list[str]:
    """The build-context sources of every COPY and ADD (those --from another stage or image excluded)."""
    lines, heredoc, joined = [], None, ""
    for raw in dockerfile.splitlines():
        if heredoc is not None:
            heredoc = None if raw.strip() == heredoc else heredoc
            continue
        marker = re.search(r"<<-?['\"]?(\w+)['\"]?", raw)
        if marker and not raw.rstrip().endswith("\\"):
            heredoc = marker.group(1)
        joined += raw.rstrip()[:-1] + " " if raw.rstrip().endswith("\\") else raw
        if not raw.rstrip().endswith("\\"):
            lines.append(joined)
            joined = ""
    sources: list[str] = []
    for line in lines:
        words = line.split(maxsplit=1)
        if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
            continue
        rest = words[1].strip()
        flags = re.findall(r"--[\w-]+(?:=\S+)?", rest.split("[", 1)[0]) if rest.startswith("--") else []
        if any(f.startswith("--from") for f in flags):
            continue
        for flag in flags:
            rest = rest.replace(flag, "", 1).strip()
        args = json.loads(rest) if rest.startswith("[") else rest.split()
        sources.extend(args[:-1])
    return sources


def named_by_copy(sources: list[str], path: str) -> bool:
    """Whether a COPY source is `path` or a directory above it (globs as .dockerignore patterns)."""
    for source in sources:
        src = re.sub(r"^(\./)+", "", source).strip("/")
        if src in ("", "."):
            return True
        regex = _pattern_regex(src)
        if any(regex.fullmatch(p) for p in _self_and_parents(path)):
            return True
    return False


def reaches_image(path: str, root: Path = ROOT) -> bool:
    """Whether `path` would be copied into the image from a build context at `root`."""
    ignore = root / ".dockerignore"
    rules = parse_dockerignore(ignore.read_text()) if ignore.exists() else []
    return named_by_copy(copy_sources((root / "Dockerfile").read_text()), path) and not excluded(rules, path)


# ---- the matcher itself, on Docker's documented examples -------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/temp*", "temp", False),
        ("*/*/temp*", "somedir/subdir/temporary.txt", True),
        ("temp?", "tempa", True),
        ("temp?", "temp/x", False),
        ("*.md\n!README*.md", "README-secret.md", False),
        ("*.md\n!README*.md", "CHANGES.md", True),
        ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
        ("**/*.go", "a/b/c.go", True),
        ("**/*.go", "c.go", True),
        ("*.db", "data/x.db", False),  # a bare * never crosses a directory
        ("/.env", ".env", True),
        ("./.git", ".git/config", True),  # a directory excludes everything below it
        ("*\n!core\n**/__pycache__", "core/x.py", False),
        ("*\n!core\n**/__pycache__", "core/__pycache__/x.pyc", True),
        ("*\n!core", "tests/x.py", True),
        ("# .env", ".env", False),
        ("data[0-9]", "data7/x", True),
        ("data[!0-9]", "data7/x", False),
    ],
)
def test_dockerignore_matcher_follows_docker(patterns: str, path: str, expected: bool) -> None:
    assert excluded(parse_dockerignore(patterns), path) is expected


def test_copy_sources_reads_every_form() -> None:
    dockerfile = (
        "FROM python:3.11-slim AS base\n"
        "COPY pyproject.toml README.md ./\n"
        'COPY ["supervisor.py", "/app/"]\n'
        "COPY --chown=1:1 core ./core\n"
        "COPY --from=base /etc/passwd /x\n"
        "ADD --chmod=644 a \\\n    b /dst/\n"
        "RUN python - <<'PY'\nCOPY . .\nPY\n"
    )
    assert copy_sources(dockerfile) == ["pyproject.toml", "README.md", "supervisor.py", "core", "a", "b"]


def test_a_tree_with_copy_everything_and_no_dockerignore_leaks(tmp_path: Path) -> None:
    # What the repository had: the check must catch it.
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY . .\n")
    assert reaches_image(".env", tmp_path) and reaches_image(".git/config", tmp_path)


# ---- the repository's own files --------------------------------------------------------------------------

NEVER_IN_IMAGE = [
    ".env",
    ".env.live",
    ".env.production",
    ".git/config",
    ".git/HEAD",
    ".venv/bin/python",
    ".ci/run",
    "config.toml",
    "tests/unit/test_config.py",
    "bench/run.py",
    f"{DATA_DIR}/perp-farmer.db",
    f"{DATA_DIR}/perp-farmer.db-wal",
    f"{DATA_DIR}/control.ipc",
    "perp-farmer.db",
    "perp-farmer.db-wal",
    "core/perp-farmer.db-shm",
    "core/.env",
    "core/__pycache__/config.cpython-311.pyc",
    ".pytest_cache/v/cache/nodeids",
    ".ruff_cache/CACHEDIR.TAG",
    ".mypy_cache/CACHEDIR.TAG",
    ".hypothesis/examples/x",
    "build/lib/core/config.py",
    "dist/perp_farmer-0.1.0-py3-none-any.whl",
    "perp_farmer.egg-info/PKG-INFO",
]


@pytest.mark.parametrize("path", NEVER_IN_IMAGE)
def test_local_secrets_history_tests_and_state_never_reach_the_image(path: str) -> None:
    assert not reaches_image(path), f"{path} would be copied into the image"


def _packages() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return [pattern.rstrip("*") for pattern in includes]


def test_what_the_image_needs_does_reach_it() -> None:
    needed = ["pyproject.toml", "README.md", "supervisor.py"]
    for package in _packages():
        needed += [p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*.py")]
    assert len(needed) > 20
    missing = [path for path in needed if not reaches_image(path)]
    assert not missing, f"the image would lack {missing}"
