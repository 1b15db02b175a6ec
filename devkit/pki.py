"""A development CA and certificates for ``devkit up --tls on|mutual``: never used in
production, where certificates come from the operator (e.g. cert-manager)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


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
