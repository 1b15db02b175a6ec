"""TLS for every gRPC server and client.

Servers present ``VOTING_TLS_CERT``/``VOTING_TLS_KEY``. Clients verify servers against
``VOTING_TLS_CA``. With ``VOTING_TLS_CLIENT_AUTH=require`` (mutual TLS) servers accept only
clients whose certificate is signed by that CA, and the services' own clients (gateway to
query service, tools) present ``VOTING_TLS_CLIENT_CERT``/``VOTING_TLS_CLIENT_KEY``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc

from voting.config import TlsSettings
from voting.errors import ConfigError


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from exc


def server_credentials(settings: TlsSettings) -> grpc.ServerCredentials | None:
    """Credentials for a server port, or None for plaintext (TLS not configured)."""
    if not settings.cert:
        return None
    require = settings.client_auth == "require"
    if require and not settings.ca:
        raise ConfigError("VOTING_TLS_CLIENT_AUTH=require needs VOTING_TLS_CA (the clients' CA)")
    return grpc.ssl_server_credentials(
        [(_read(settings.key, "TLS key"), _read(settings.cert, "TLS certificate"))],
        root_certificates=_read(settings.ca, "TLS CA") if settings.ca else None,
        require_client_auth=require,
    )


def channel_credentials(settings: TlsSettings) -> grpc.ChannelCredentials | None:
    """Credentials for a client channel, or None for plaintext."""
    if not settings.ca:
        return None
    client = (
        (
            _read(settings.client_key, "TLS client key"),
            _read(settings.client_cert, "TLS client certificate"),
        )
        if settings.client_cert
        else (None, None)
    )
    return grpc.ssl_channel_credentials(
        root_certificates=_read(settings.ca, "TLS CA"),
        private_key=client[0],
        certificate_chain=client[1],
    )


ChannelOptions = Sequence[tuple[str, int | str]]


def aio_channel(
    target: str, settings: TlsSettings, options: ChannelOptions | None = None
) -> grpc.aio.Channel:
    """The one way the services open a channel to another service (TLS when configured)."""
    credentials = channel_credentials(settings)
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, credentials, options=options)


def sync_channel(
    target: str, settings: TlsSettings, options: ChannelOptions | None = None
) -> grpc.Channel:
    """A blocking channel (tools, tests, readiness probes), TLS when configured."""
    credentials = channel_credentials(settings)
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, credentials, options=options)
