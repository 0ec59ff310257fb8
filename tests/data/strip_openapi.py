"""Regenerate the structural copies of the venues' OpenAPI definitions that tests/conformance validates against.

Keeps paths, parameters, request bodies, responses and schemas; drops prose (descriptions, summaries, examples,
tags, external docs), which the tests never read. Where a reply's schema is a bare type (Hibachi documents every
reply as `type: object` with an example), the example's structure is kept as `x-example-schema`: the keys it shows
and their JSON types, never its values:
    python tests/data/strip_openapi.py /path/to/backpack-api/openapi.yml tests/data/backpack-openapi.json
The same serves the AsyncAPI definition of Backpack's streams (channels, messages and payload schemas kept):
    python tests/data/strip_openapi.py /path/to/backpack-api/asyncapi.yml tests/data/backpack-asyncapi.json
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
        return {k: strip(v, named=(k in NAMED_MAPS and not named)) for k, v in node.items() if named or k not in PROSE}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


def shape(example: Any) -> dict[str, Any]:
    """A JSON schema of what `example` shows: an object's keys (those in every listed item are required), an
    array's item shape, a scalar's type (an integer also passes as a number; null passes as anything)."""
    if isinstance(example, dict):
        return {"type": "object", "required": sorted(example),
                "properties": {k: shape(v) for k, v in sorted(example.items())}}  # fmt: skip
    if isinstance(example, list):
        objects = [x for x in example if isinstance(x, dict)]
        if objects and len(objects) == len(example):
            keys = sorted({k for x in objects for k in x})
            merged = {k: next(x[k] for x in objects if k in x) for k in keys}
            item = shape(merged)
            item["required"] = sorted(set.intersection(*(set(x) for x in objects)))
            return {"type": "array", "items": item}
        return {"type": "array", "items": shape(example[0])} if example else {"type": "array"}
    if example is None:
        return {}
    kind = _JSON_TYPES[type(example)]
    return {"type": ["integer", "number"] if kind == "integer" else kind}


def keep_example_shapes(source: Any, target: Any) -> None:
    """Attach x-example-schema to each reply of `target` whose schema in `source` has no structure of its own."""
    for path, ops in source.get("paths", {}).items():
        for method, op in ops.items():
            if not isinstance(op, dict):
                continue
            for code, response in op.get("responses", {}).items():
                for ctype, media in (response or {}).get("content", {}).items():
                    schema = media.get("schema", {})
                    bare = not any(k in schema for k in ("properties", "items", "$ref", "allOf", "oneOf", "anyOf"))
                    if bare and media.get("example") is not None:
                        out = target["paths"][path][method]["responses"][code]["content"][ctype]
                        out["x-example-schema"] = shape(media["example"])


def main(source: str, target: str) -> int:
    """Write the stripped definition as sorted, indented JSON."""
    spec = yaml.safe_load(Path(source).read_text())
    out = strip(spec)
    keep_example_shapes(spec, out)
    out.pop("info", None)
    out["info"] = {"title": Path(source).parent.name, "version": str(spec.get("info", {}).get("version", "0"))}
    Path(target).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
