"""Structural validation: required fields, lengths and id formats, before anything else.

Each function returns the field violations of one request (empty when it is well
formed); field paths follow ``google.rpc.BadRequest`` conventions (``options[1].label``).
"""

from __future__ import annotations

import re
import unicodedata

from voting.identity import OPTION_ID, POLL_ID, REQUEST_ID
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import poll_pb2

Violations = list[tuple[str, str]]

# Control characters (C0, DEL, C1), and lone surrogates, are never part of a name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

MAX_VOTER_ID = 128
MAX_TITLE = 300
MAX_LABEL = 200
MIN_OPTIONS = 2
MAX_OPTIONS = 64
# Timestamps are checked against a sane window so arithmetic on them never overflows.
_MIN_SECONDS = 0
_MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z


def _id(value: str, pattern: re.Pattern[str], name: str, what: str, out: Violations) -> None:
    if not value:
        out.append((name, "required"))
    elif pattern.fullmatch(value) is None:
        out.append((name, what))


def _text(value: str, limit: int, name: str, out: Violations) -> None:
    if not value:
        out.append((name, "required"))
    elif len(value) > limit:
        out.append((name, f"at most {limit} characters"))
    elif _CONTROL.search(value):
        out.append((name, "must not contain control characters"))


# What a voter id may not hold: control and format characters (U+200B zero-width space,
# U+202E right-to-left override: ids that look alike but differ, or that lie about their
# order), surrogates, private-use and unassigned code points, and line or paragraph
# separators. It must be in Unicode normalization form C, so that one visible id is one
# byte string, and not start or end with white space.
_NOT_IN_AN_ID = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
VOTER_ID_RULE = (
    "1 to 128 characters of printable text in Unicode NFC, without control or format "
    "characters (such as U+200B or U+202E) and not starting or ending with white space"
)


def voter_id(value: str, out: Violations, name: str = "voter_id") -> None:
    if not value:
        out.append((name, "required"))
        return
    if len(value) > MAX_VOTER_ID or value != value.strip():
        out.append((name, VOTER_ID_RULE))
        return
    if value.isascii() and value.isprintable():
        return  # U+0020..U+007E: NFC already, and no control or format characters
    if unicodedata.normalize("NFC", value) != value or any(
        unicodedata.category(c) in _NOT_IN_AN_ID for c in value
    ):
        out.append((name, VOTER_ID_RULE))


def poll_id(value: str, out: Violations, name: str = "poll_id") -> None:
    _id(
        value,
        POLL_ID,
        name,
        "1 to 64 characters of [a-z0-9_-], starting with a letter or digit",
        out,
    )


def request_id(value: str, out: Violations, *, required: bool, name: str = "request_id") -> None:
    if not value and not required:
        return
    _id(value, REQUEST_ID, name, "1 to 64 characters of [A-Za-z0-9._:-]", out)


def option_id(value: str, out: Violations, name: str = "option_id") -> None:
    _id(
        value,
        OPTION_ID,
        name,
        "1 to 32 characters of [a-z0-9_-], starting with a letter or digit",
        out,
    )


def cast_vote(request: cmd.CastVoteRequest, prefix: str = "") -> Violations:
    out: Violations = []
    request_id(request.request_id, out, required=False, name=f"{prefix}request_id")
    poll_id(request.poll_id, out, name=f"{prefix}poll_id")
    voter_id(request.voter_id, out, name=f"{prefix}voter_id")
    option_id(request.option_id, out, name=f"{prefix}option_id")
    return out


def close_poll(request: cmd.ClosePollRequest) -> Violations:
    out: Violations = []
    request_id(request.request_id, out, required=True)
    poll_id(request.poll_id, out)
    return out


def create_poll(request: cmd.CreatePollRequest, now_s: int) -> Violations:
    out: Violations = []
    request_id(request.request_id, out, required=True)
    poll_id(request.poll_id, out)
    _text(request.title, MAX_TITLE, "title", out)
    options = request.options
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        out.append(("options", f"{MIN_OPTIONS} to {MAX_OPTIONS} options"))
    seen: set[str] = set()
    for index, option in enumerate(options):
        option_id(option.option_id, out, name=f"options[{index}].option_id")
        _text(option.label, MAX_LABEL, f"options[{index}].label", out)
        if option.option_id in seen:
            out.append((f"options[{index}].option_id", "duplicate option id"))
        seen.add(option.option_id)
    if request.visibility not in poll_pb2.Visibility.values():
        # An unknown value must not fail open (be read as public).
        out.append(("visibility", f"unknown value {request.visibility}"))
    opens = closes = None
    for name in ("opens_at", "closes_at"):
        if not request.HasField(name):
            continue
        stamp = getattr(request, name)
        if not (_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos < 1_000_000_000):
            out.append((name, "not a valid timestamp"))
        elif name == "opens_at":
            opens = stamp.seconds
        else:
            closes = stamp.seconds
    if closes is not None:
        if closes <= now_s:
            out.append(("closes_at", "must be in the future"))
        elif opens is not None and closes <= opens:
            out.append(("closes_at", "must be after opens_at"))
    return out
