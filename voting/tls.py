"""TLS for every gRPC server and client; development certificates for ``voting up --tls``.

Servers present ``VOTING_TLS_CERT``/``VOTING_TLS_KEY``. Clients verify servers against
``VOTING_TLS_CA``. With ``VOTING_TLS_CLIENT_AUTH=require`` (mutual TLS) servers accept only
clients whose certificate is signed by that CA, and the services' own clients (gateway to
query service, tools) present ``VOTING_TLS_CLIENT_CERT``/``VOTING_TLS_CLIENT_KEY``.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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


@dataclass(frozen=True)
class DevelopmentPki:
    """Paths of a development CA and the certificates it signed."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def env(self, *, mutual: bool) -> dict[str, str]:
        return {
            "VOTING_TLS_CERT": str(self.server_cert),
            "VOTING_TLS_KEY": str(self.server_key),
            "VOTING_TLS_CA": str(self.ca),
            "VOTING_TLS_CLIENT_AUTH": "require" if mutual else "none",
            "VOTING_TLS_CLIENT_CERT": str(self.client_cert),
            "VOTING_TLS_CLIENT_KEY": str(self.client_key),
        }


def development_pki(directory: Path, *, name: str = "voting development") -> DevelopmentPki:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate,
    created once in ``directory`` (reused if present). For development only."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = DevelopmentPki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    if all(
        p.exists()
        for p in (pki.ca, pki.server_cert, pki.server_key, pki.client_cert, pki.client_key)
    ):
        return pki
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for cert_path, key_path, usage, sans in (
        (pki.server_cert, pki.server_key, ExtendedKeyUsageOID.SERVER_AUTH, True),
        (pki.client_cert, pki.client_key, ExtendedKeyUsageOID.CLIENT_AUTH, False),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} {usage._name}")])
            )
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
    return pki
