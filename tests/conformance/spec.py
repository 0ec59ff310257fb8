"""Replies checked against the venues' OpenAPI definitions (the structural copies in tests/data).

openapi-schema-validator's OAS30Validator / OAS31Validator: the OpenAPI dialects themselves (3.0's `nullable`,
`format`, discriminators), on top of jsonschema, resolving `$ref`s through a `referencing` registry that holds the
whole definition. It validates a body against a schema, which is all we need (the request side is ours).
openapi-core would also match requests to servers, which our 127.0.0.1 URLs are not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import requests
from openapi_schema_validator import OAS30Validator, OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

DATA = Path(__file__).resolve().parent.parent / "data"

# Hibachi documents no error body at all (its 400/401 carry none); its prose (spec §4) gives this one.
HIBACHI_ERROR = {
    "type": "object",
    "required": ["errorCode", "message", "status"],
    "properties": {"errorCode": {"type": "integer"}, "message": {"type": "string"}, "status": {"const": "failed"}},
}


# Where Hibachi's definition contradicts itself, what the simulator serves and how it is checked:
# - GET /trade/orders is declared `type: object`, but its example (and the prose, spec §3: "a bare array", and our
#   client) is an array: served as an array, checked against the example's shape only.
# - POST /trade/orders is declared `type: object` and the prose gives `{orders: [...]}`, but the example is a bare
#   array: served as the prose says, checked against the declared type only.
# - GET /trade/account/trades: the example shows counterparty ids as integers, the prose (SDK 0.3.2 note) says they
#   are now null: null passes there.
EXAMPLE_OVER_DECLARED = {("hibachi", "GET", "/trade/orders")}
EXAMPLE_IGNORED = {("hibachi", "POST", "/trade/orders")}
EXAMPLE_NULLABLE = {
    ("hibachi", "GET", "/trade/account/trades"): ("bidAccountId", "askAccountId", "bidOrderId", "askOrderId")
}


@dataclass
class Venue:
    """One venue's definition and what a walk over it found."""

    name: str
    spec: dict[str, Any] = field(repr=False)
    urn: str
    validator: type[OAS30Validator] | type[OAS31Validator]
    registry: Registry[Any] = field(repr=False)
    error_ref: str | None
    undocumented: set[tuple[str, str, int]] = field(default_factory=set)  # (method, path, status) seen
    checked: set[tuple[str, str]] = field(default_factory=set)  # operations whose reply was validated

    def operations(self) -> set[tuple[str, str]]:
        """Every (METHOD, path) the definition documents."""
        return {(m.upper(), p) for p, ops in self.spec["paths"].items() for m in ops if m != "parameters"}

    def can_be_malformed(self, method: str, path: str) -> bool:
        """Whether a request can break the operation's schema: it takes a body, or a query parameter that is more
        than a free string (every value on a query string is a string)."""
        op = self.spec["paths"][path][method.lower()]
        return "requestBody" in op or any(
            p.get("in") == "query" and p.get("schema") != {"type": "string"} for p in op.get("parameters", [])
        )

    def schema_errors(self, schema: dict[str, Any], body: Any) -> list[str]:
        validator = self.validator(schema, registry=self.registry)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]

    def check(self, method: str, path: str, response: requests.Response) -> list[str]:
        """Problems of one reply against the documented response (or, undocumented, the venue's error body)."""
        op = self.spec["paths"][path][method.lower()]
        self.checked.add((method, path))
        status = str(response.status_code)
        documented = op["responses"].get(status)
        ctype = response.headers.get("Content-Type", "")
        if documented is None:
            self.undocumented.add((method, path, response.status_code))
            if response.status_code < 400:
                return [f"undocumented success status {status}"]
            return self.error_body_problems(response)
        content = documented.get("content")
        if not content:
            if response.status_code >= 400:  # Hibachi's 400/401: no body documented, so the prose's body
                return self.error_body_problems(response)
            return [] if not response.content else [f"{status} documents no body, got {response.content[:80]!r}"]
        media_type, media = next(
            ((k, v) for k, v in content.items() if ctype.startswith(k.split(";")[0])), (None, None)
        )
        if media is None:
            return [f"{status}: content type {ctype!r} is not one of {sorted(content)}"]
        body: Any = response.text if media_type.startswith("text/") else response.json()  # type: ignore[union-attr]
        pointer = "/".join(
            [
                "#/paths",
                path.replace("~", "~0").replace("/", "~1"),
                method.lower(),
                "responses",
                status,
                "content",
                media_type.replace("~", "~0").replace("/", "~1"),
                "schema",
            ]
        )  # type: ignore[union-attr]
        key = (self.name, method, path)
        problems = [] if key in EXAMPLE_OVER_DECLARED else self.schema_errors({"$ref": self.urn + pointer}, body)
        if "x-example-schema" in media and key not in EXAMPLE_IGNORED:
            nullable = EXAMPLE_NULLABLE.get(key, ())
            problems += [
                f"(example shape) {p}"
                for p in self.schema_errors(media["x-example-schema"], body)
                if not (p.split(":")[0].rsplit("/", 1)[-1] in nullable and ": None is not" in p)
            ]
        return problems

    def error_body_problems(self, response: requests.Response) -> list[str]:
        try:
            body = response.json()
        except ValueError:
            return [f"{response.status_code}: error body is not JSON: {response.text[:80]!r}"]
        schema = {"$ref": self.urn + self.error_ref} if self.error_ref else HIBACHI_ERROR
        return [f"(error body) {p}" for p in self.schema_errors(schema, body)]


@cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}-openapi.json").read_text())


def venue(name: str) -> Venue:
    """A fresh Venue for `backpack` or `hibachi`."""
    spec = _load(name)
    urn = f"urn:{name}"
    is_30 = spec["openapi"].startswith("3.0")
    resource = Resource.from_contents(spec, default_specification=DRAFT4 if is_30 else DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(urn, resource)
    error_ref = "#/components/schemas/ApiErrorResponse" if name == "backpack" else None
    return Venue(name, spec, urn, OAS30Validator if is_30 else OAS31Validator, registry, error_ref)
