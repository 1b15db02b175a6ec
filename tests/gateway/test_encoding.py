"""What browsers receive: proto3 JSON with the .proto's field names, SSE events, resume ids."""

from __future__ import annotations

import json

import grpc
import pytest

from gateway.encoding import last_event_id, results_event, to_json
from gateway.errors import UpstreamError
from voting.v1 import poll_pb2, results_pb2

pytestmark = pytest.mark.unit


def test_results_are_json_with_proto_field_names_and_every_field() -> None:
    results = results_pb2.Results(poll_id="p", version=3, total=5, status=poll_pb2.POLL_STATUS_OPEN)
    results.counts.add(option_id="a", votes=5)
    results.counts.add(option_id="b", votes=0)
    results.updated_at.FromMilliseconds(1_700_000_000_000)

    body = json.loads(to_json(results))

    assert body["poll_id"] == "p"
    assert body["counts"] == [{"option_id": "a", "votes": "5"}, {"option_id": "b", "votes": "0"}]
    assert body["total"] == "5"  # 64-bit integers are strings in proto3 JSON
    assert body["final"] is False
    assert body["status"] == "POLL_STATUS_OPEN"
    assert body["updated_at"] == "2023-11-14T22:13:20Z"


def test_an_event_is_one_id_line_and_one_data_line() -> None:
    event = results_event(results_pb2.Results(poll_id="p", version=42, final=True))

    lines = event.decode().split("\n")
    assert lines[0] == "id: 42"
    assert lines[1].startswith("data: {")
    assert json.loads(lines[1][len("data: ") :])["final"] is True
    assert lines[2:] == ["", ""]


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, 0), ("", 0), ("17", 17), (" 17 ", 17), ("-3", 0), ("x", 0), ("1.5", 0)],
)
def test_last_event_id_is_the_version_held_or_zero(header: str | None, expected: int) -> None:
    assert last_event_id(header) == expected


@pytest.mark.parametrize(
    ("code", "status", "permanent"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400, True),
        (grpc.StatusCode.NOT_FOUND, 404, True),
        (grpc.StatusCode.UNAVAILABLE, 503, False),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504, False),
        (grpc.StatusCode.INTERNAL, 502, False),
    ],
)
def test_query_service_refusals_map_to_http(
    code: grpc.StatusCode, status: int, permanent: bool
) -> None:
    error = UpstreamError(code, "why")

    assert error.http_status == status
    assert error.permanent is permanent
    assert error.body() == {"error": {"code": code.name, "message": "why"}}
