"""The sandbox's throwaway certificate authority and the TLS context its servers use."""
from __future__ import annotations

import base64
import hashlib
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization


@dataclass(frozen=True)
class Certificates:
    """A CA made at start, and one server certificate for every sandboxed hostname."""

    ca_pem: Path
    spki_pins: tuple[str, ...]
    server_context: ssl.SSLContext  # offers h2 and http/1.1 in ALPN
    http1_context: ssl.SSLContext  # offers http/1.1 only (the `http2=False` knob)

    @property
    def chromium_pin_flag(self) -> str:
        """The Chromium flag that trusts the sandbox's certificates (and nothing else)."""
        return "--ignore-certificate-errors-spki-list=" + ",".join(self.spki_pins)


def spki_pin(cert_pem: bytes) -> str:
    """Base64 SHA-256 of a certificate's SubjectPublicKeyInfo, as Chromium's pin list wants it."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def make_certificates(hostnames: tuple[str, ...], directory: Path) -> Certificates:
    """Create a CA and a leaf for `hostnames`; write the CA bundle into `directory`."""
    ca = trustme.CA(organization_name="harvestkit sandbox")
    leaf = ca.issue_cert(*hostnames)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_path = directory / "sandbox-ca.pem"
    fd = os.open(ca_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(ca.cert_pem.bytes())

    def context(alpn: list[str]) -> ssl.SSLContext:
        made = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        made.minimum_version = ssl.TLSVersion.TLSv1_2
        made.set_alpn_protocols(alpn)
        leaf.configure_cert(made)
        return made

    pins = (spki_pin(leaf.cert_chain_pems[0].bytes()), spki_pin(ca.cert_pem.bytes()))
    return Certificates(
        ca_pem=ca_path,
        spki_pins=pins,
        server_context=context(["h2", "http/1.1"]),
        http1_context=context(["http/1.1"]),
    )
