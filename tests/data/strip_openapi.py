"""Regenerate the structural copies of the venues' OpenAPI definitions that tests/conformance validates against.

Keeps paths, parameters, request bodies, responses and schemas; drops prose (descriptions, summaries, examples,
tags, external docs), which the tests never read:
    python tests/data/strip_openapi.py /path/to/backpack-api/openapi.yml tests/data/backpack-openapi.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

PROSE = {"description", "summary", "example", "examples", "externalDocs", "tags", "x-codeSamples", "title",
         "contact", "license", "termsOfService", "x-tagGroups", "x-logo"}  # fmt: skip
# Inside these maps the keys are names chosen by the definition (a property may be called "description").
NAMED_MAPS = {"properties", "schemas", "responses", "parameters", "paths", "headers", "content", "securitySchemes"}


def strip(node: Any, *, named: bool = False) -> Any:
    """A copy of `node` without its prose keys."""
    if isinstance(node, dict):
        return {
            k: strip(v, named=(k in NAMED_MAPS and not named))
            for k, v in node.items()
            if named or k not in PROSE
        }
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def main(source: str, target: str) -> int:
    """Write the stripped definition as sorted, indented JSON."""
    spec = yaml.safe_load(Path(source).read_text())
    out = strip(spec)
    out.pop("info", None)
    out["info"] = {"title": Path(source).parent.name, "version": str(spec.get("info", {}).get("version", "0"))}
    Path(target).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
