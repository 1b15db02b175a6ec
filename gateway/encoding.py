"""What goes on the wire to browsers: protobuf as JSON, snapshots as Server-Sent Events."""

from __future__ import annotations

import json

from google.protobuf import json_format
from google.protobuf.message import Message

from voting.v1 import results_pb2

# A comment line: ignored by EventSource, keeps proxies from closing a quiet stream.
HEARTBEAT = b": heartbeat\n\n"


def to_json(message: Message) -> str:
    """The proto3 JSON mapping on one line: field names as in the .proto, every field
    present (zeros too), 64-bit integers as strings."""
    fields = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def results_event(results: results_pb2.Results) -> bytes:
    """One SSE event: the snapshot's version as its id (what Last-Event-ID resumes from)."""
    return f"id: {results.version}\ndata: {to_json(results)}\n\n".encode()


def chunk(data: bytes) -> bytes:
    """``data`` framed as one HTTP/1.1 chunk (RFC 9112 7.1): what a chunked response
    puts on the wire for it, so it can be built once and written to many browsers."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def last_event_id(header: str | None) -> int:
    """The version a reconnecting browser already holds; 0 if none or unreadable."""
    if header is None:
        return 0
    try:
        return max(0, int(header.strip()))
    except ValueError:
        return 0
