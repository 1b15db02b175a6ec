"""The gateway's JSON API, health and static page against the real services."""

from __future__ import annotations

import http.client
import json
from typing import Any

from tests.gateway.sse import cast, gateway_url, poll_in_read_model
from tests.harness import Deployment, wait_until


def get(deployment: Deployment, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(
        "127.0.0.1", deployment.stack.options.gateway_port, timeout=10
    )
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def get_json(deployment: Deployment, path: str) -> tuple[int, Any]:
    status, headers, body = get(deployment, path)
    assert headers["Content-Type"].startswith("application/json"), headers
    return status, json.loads(body)


def test_results_poll_and_errors_come_from_the_query_service_as_json(running: Deployment) -> None:
    poll_id = poll_in_read_model(running)
    cast(running, poll_id, {"a": 3, "b": 1})
    wait_until(
        lambda: get_json(running, f"/api/polls/{poll_id}/results")[1]["total"] == "4",
        timeout_s=30,
        what="the votes in the results",
    )

    status, results = get_json(running, f"/api/polls/{poll_id}/results")
    assert status == 200
    assert results["poll_id"] == poll_id
    assert results["counts"] == [
        {"option_id": "a", "votes": "3"},
        {"option_id": "b", "votes": "1"},
        {"option_id": "c", "votes": "0"},
    ]
    assert results["final"] is False
    assert results["status"] == "POLL_STATUS_OPEN"

    status, poll = get_json(running, f"/api/polls/{poll_id}")
    assert status == 200
    assert poll["title"] == f"Poll {poll_id}"
    assert [o["label"] for o in poll["options"]] == ["A", "B", "C"]

    status, listing = get_json(running, "/api/polls?page_size=5")
    assert status == 200
    assert poll_id in [p["poll_id"] for p in listing["polls"]]

    status, missing = get_json(running, "/api/polls/no-such-poll/results")
    assert status == 404
    assert missing["error"]["code"] == "NOT_FOUND"
    status, invalid = get_json(running, "/api/polls/Not%20an%20id/events")
    assert status == 400
    assert invalid["error"]["code"] == "INVALID_ARGUMENT"
    assert get_json(running, "/api/polls?page_size=many")[0] == 400


def test_health_follows_the_query_service(running: Deployment) -> None:
    status, health = get_json(running, "/healthz")
    assert status == 200
    assert health["status"] == "SERVING"
    assert health["query_service"] == f"127.0.0.1:{running.stack.options.query_port}"

    running.kill("query")
    status, health = get_json(running, "/healthz")
    assert status == 503
    assert health["status"] == "NOT_SERVING"

    running.restart("query")
    wait_until(lambda: get_json(running, "/healthz")[0] == 200, timeout_s=15, what="health again")


def test_the_page_is_served_at_the_root_and_for_each_poll(running: Deployment) -> None:
    for path in ("/", "/polls/any-poll"):
        status, headers, body = get(running, path)
        assert status == 200
        assert headers["Content-Type"].startswith("text/html")
        assert b'src="/static/app.js"' in body
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        status, headers, _ = get(running, asset)
        assert status == 200
        assert kind in headers["Content-Type"]
    assert gateway_url(running, "/").startswith("http://127.0.0.1:")
