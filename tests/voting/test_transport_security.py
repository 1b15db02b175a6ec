"""TLS on every gRPC server: plaintext is refused; under mutual TLS, so is a client
certificate from another CA."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from devkit.pki import development_pki
from devkit.stack.stack import Stack
from tests.harness import Deployment
from voting.config import TlsSettings
from voting.tls import sync_channel
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import command_service_pb2_grpc, poll_pb2

pytestmark = pytest.mark.slow


def create(channel: grpc.Channel, poll_id: str) -> str:
    stub = command_service_pb2_grpc.CommandServiceStub(channel)
    reply = stub.CreatePoll(
        cmd.CreatePollRequest(
            request_id=poll_id,
            poll_id=poll_id,
            title="tls",
            options=[poll_pb2.PollOption(option_id=o, label=o) for o in "ab"],
        ),
        timeout=10,
    )
    return str(reply.poll_id)


def test_tls_servers_refuse_plaintext(infra: Stack, tmp_path: Path) -> None:
    d = Deployment(infra, tmp_path, tls="on")
    try:
        d.start("command")
        target = f"127.0.0.1:{d.stack.options.command_port}"
        assert create(sync_channel(target, d.settings.tls), "over-tls") == "over-tls"
        with grpc.insecure_channel(target) as plain, pytest.raises(grpc.RpcError) as caught:
            create(plain, "in-the-clear")
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        d.stop()


def test_mutual_tls_refuses_a_client_certificate_from_another_ca(
    infra: Stack, tmp_path: Path
) -> None:
    d = Deployment(infra, tmp_path / "d", tls="mutual")
    try:
        d.start("command")
        target = f"127.0.0.1:{d.stack.options.command_port}"
        assert create(sync_channel(target, d.settings.tls), "with-our-cert") == "with-our-cert"
        foreign = development_pki(tmp_path / "foreign", name="someone else")
        theirs = TlsSettings(
            ca=d.settings.tls.ca,  # they trust our server...
            client_cert=str(foreign.client_cert),  # ...but present a certificate we never signed
            client_key=str(foreign.client_key),
        )
        without_cert = TlsSettings(ca=d.settings.tls.ca)
        for settings in (theirs, without_cert):
            with sync_channel(target, settings) as channel, pytest.raises(grpc.RpcError) as caught:
                create(channel, "intruder")
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        d.stop()
