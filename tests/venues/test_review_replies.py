"""Reply shapes from the review of the clients against the spec (issue 15 item 5): Backpack's account summary
carries its required decimal strings and the client reads it, and a path neither simulator serves still gets
the venue's JSON error body, which the client turns into a typed error with the venue's code."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
import requests

from exchanges.backpack import parse as bp_parse
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import BackpackSim
from exchanges.errors import InvalidOrder, OrderNotFound, VenueError
from exchanges.hibachi import parse as hb_parse
from exchanges.hibachi.sim import HibachiSim
from exchanges.sim.http import Handler, Request, Response
from tests.conformance.conftest import BackpackCaller
from tests.conformance.spec import venue


def test_backpack_account_reply_has_its_limits_as_decimal_strings(bp_sim: BackpackSim) -> None:
    reply = BackpackCaller(bp_sim)("GET", "/api/v1/account", params={}, instruction="accountQuery")
    assert reply.status_code == 200
    body = reply.json()
    for key in ("borrowLimit", "positionLimit", "leverageLimit"):
        assert isinstance(body[key], str) and D(body[key]).is_finite(), key
    assert venue("backpack").check("GET", "/api/v1/account", reply) == []  # every required field, as typed


def test_backpack_client_reads_an_account_reply_with_real_limits(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    def limited(handler: Handler) -> Handler:
        def reply(request: Request) -> Response:
            body = handler(request).body | {"borrowLimit": "250000.5", "positionLimit": "1500000"}
            assert venue("backpack").schema_errors({"$ref": "urn:backpack#/components/schemas/AccountSummary"},
                                                   body) == []  # fmt: skip
            return Response(200, body)

        return reply

    bp_sim.http.wrap_route("GET", "/api/v1/account", limited)
    bp.set_leverage("BTC_USDC_PERP", D(5))
    assert bp.leverage_limit() == D(5)


UNKNOWN = [("GET", "/nothing/here"), ("POST", "/api/v2/order"), ("DELETE", "/trade/orders/all/of/them")]


@pytest.mark.parametrize(("method", "path"), UNKNOWN)
def test_an_unknown_backpack_path_answers_a_json_error(bp_sim: BackpackSim, method: str, path: str) -> None:
    reply = requests.request(method, bp_sim.rest_url + path, json={} if method != "GET" else None, timeout=5)
    assert reply.status_code == 404 and reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["code"] == "RESOURCE_NOT_FOUND" and path in reply.json()["message"]
    error = bp_parse.parse_error(reply.status_code, reply.text)
    assert isinstance(error, OrderNotFound) and error.code == "RESOURCE_NOT_FOUND"


@pytest.mark.parametrize("host", ["api", "data_api"])
@pytest.mark.parametrize(("method", "path"), UNKNOWN)
def test_an_unknown_hibachi_path_answers_a_json_error(hb_sim: HibachiSim, host: str, method: str, path: str) -> None:
    base = hb_sim.api_url if host == "api" else hb_sim.data_api_url
    reply = requests.request(method, base + path, json={} if method != "GET" else None, timeout=5)
    assert reply.status_code == 404 and reply.headers["Content-Type"].startswith("application/json")
    assert reply.json() | {"message": ""} == {"errorCode": 3, "message": "", "status": "failed"}
    error = hb_parse.parse_error(reply.status_code, reply.text)
    assert isinstance(error, OrderNotFound) and error.code == 3


@pytest.mark.parametrize(
    ("sim_name", "method", "path"),
    [("backpack", "PUT", "/api/v1/order"), ("hibachi", "PATCH", "/trade/order")],
)
def test_a_method_a_path_does_not_take_answers_a_json_error(
    bp_sim: BackpackSim, hb_sim: HibachiSim, sim_name: str, method: str, path: str
) -> None:
    base = bp_sim.rest_url if sim_name == "backpack" else hb_sim.api_url
    reply = requests.request(method, base + path, json={}, timeout=5)
    assert reply.status_code == 405 and reply.headers["Content-Type"].startswith("application/json")
    parse_error = bp_parse.parse_error if sim_name == "backpack" else hb_parse.parse_error
    error: VenueError = parse_error(reply.status_code, reply.text)
    assert isinstance(error, InvalidOrder) and error.code in ("INVALID_CLIENT_REQUEST", 4)
