"""Making Chromium trust HARVESTKIT_CA_BUNDLE: SHA-256 SPKI pins for `--ignore-certificate-errors-spki-list`.

Chromium matches the pins against the chain the server presents, and a TLS-intercepting proxy (the
sandbox, mitmproxy...) presents its leaf without the CA: a pin of the CA alone does not work. So
the pins are the CA certificates' own (enough for a server that sends its whole chain) plus those
of the leaf each host presents, fetched through the same proxy with Python's ssl and verified
against the bundle first: Chromium ends up trusting exactly what the bundle vouches for.

The SubjectPublicKeyInfo is found by a small DER walk; no crypto library is needed.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from .errors import HarvestError

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL)
PROBE_TIMEOUT = 5.0


def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end of element) of the DER element at `offset`."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or start + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + length > len(data):
        raise ValueError("truncated DER")
    return tag, start, start + length


def spki_der(certificate: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a DER X.509 certificate."""
    tag, start, _ = _tlv(certificate, 0)  # Certificate ::= SEQUENCE
    tag_tbs, offset, _ = _tlv(certificate, start)  # tbsCertificate ::= SEQUENCE
    if tag != 0x30 or tag_tbs != 0x30:
        raise ValueError("not an X.509 certificate")
    tag, _, end = _tlv(certificate, offset)
    if tag == 0xA0:  # [0] EXPLICIT version
        offset = end
    for _ in range(5):  # serialNumber, signature, issuer, validity, subject
        offset = _tlv(certificate, offset)[2]
    tag, _, end = _tlv(certificate, offset)
    if tag != 0x30:
        raise ValueError("no SubjectPublicKeyInfo where expected")
    return certificate[offset:end]


def spki_pin(certificate: bytes) -> str:
    """Base64 SHA-256 of a DER certificate's SubjectPublicKeyInfo, as Chromium wants it."""
    return base64.b64encode(hashlib.sha256(spki_der(certificate)).digest()).decode("ascii")


def pem_certificates(pem: bytes) -> list[bytes]:
    """The DER certificates of a PEM bundle."""
    return [base64.b64decode(b"".join(block.split())) for block in _PEM.findall(pem)]


def _open(host: str, proxy: str | None, timeout: float) -> socket.socket:
    """A TCP connection to host:443, through the HTTP proxy if given."""
    if not proxy:
        return socket.create_connection((host, 443), timeout=timeout)
    parts = urlsplit(proxy)
    conn = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 8080), timeout=timeout)
    try:
        conn.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer and len(answer) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
        if not answer.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
            raise OSError(f"the proxy refused CONNECT {host}:443")
    except BaseException:
        conn.close()
        raise
    return conn


def leaf_certificate(host: str, proxy: str | None, ca_bundle: str, timeout: float = PROBE_TIMEOUT) -> bytes:
    """The DER leaf certificate `host` presents, verified against `ca_bundle`."""
    context = ssl.create_default_context(cafile=ca_bundle)
    with _open(host, proxy, timeout) as conn, context.wrap_socket(conn, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise OSError(f"{host} presented no certificate")
    return der


async def spki_pins(ca_bundle: str | None, hosts: tuple[str, ...], proxy: str | None) -> tuple[str, ...]:
    """The pins that make Chromium trust `ca_bundle` for `hosts` (empty without a bundle).

    A host whose certificate cannot be fetched or verified gets no pin: Chromium then refuses it,
    and the harvest reports the site unreachable. Only http:// proxies (or none) are probed.
    """
    if not ca_bundle:
        return ()
    try:
        pins = [spki_pin(der) for der in pem_certificates(Path(ca_bundle).read_bytes())]
    except (OSError, ValueError) as exc:
        raise HarvestError(f"HARVESTKIT_CA_BUNDLE={ca_bundle}: cannot read its certificates ({exc})") from None
    if not pins:
        raise HarvestError(f"HARVESTKIT_CA_BUNDLE={ca_bundle} holds no PEM certificate")
    if proxy and urlsplit(proxy).scheme != "http":
        return tuple(dict.fromkeys(pins))
    leaves = await asyncio.gather(
        *(asyncio.to_thread(leaf_certificate, host, proxy, ca_bundle) for host in hosts),
        return_exceptions=True,
    )
    for leaf in leaves:
        if isinstance(leaf, bytes):
            with contextlib.suppress(ValueError):
                pins.append(spki_pin(leaf))
    return tuple(dict.fromkeys(pins))
