"""The ClientHello reader, fed real hellos from OpenSSL and synthetic Chrome-like ones (no network)."""
from __future__ import annotations

import ssl
import struct

import pytest
from harvestkit.sandbox.clienthello import (
    NotClientHello,
    is_grease,
    needed_bytes,
    parse_client_hello,
)


def openssl_hello(sni: str = "api.cerebras.ai") -> bytes:
    """The ClientHello Python's own ssl module sends, captured from a memory BIO."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def extension(kind: int, data: bytes) -> bytes:
    return struct.pack("!HH", kind, len(data)) + data


def chrome_like_hello(sni: str = "playground.ai.cloudflare.com") -> bytes:
    name = sni.encode()
    server_name = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    alpn_list = b"\x02h2\x08http/1.1"
    extensions = b"".join(
        [
            extension(0x5A5A, b""),  # GREASE
            extension(0, server_name),
            extension(16, struct.pack("!H", len(alpn_list)) + alpn_list),
            extension(17613, b"\x00\x03\x02h2"),  # ALPS
            extension(10, struct.pack("!HHHH", 6, 0x2A2A, 0x001D, 0x0017)),
            extension(0x3A3A, b"\x00"),  # GREASE
        ]
    )
    ciphers = struct.pack("!HHHH", 0x8A8A, 0x1301, 0x1302, 0xC02B)
    body = (
        struct.pack("!H", 0x0303)
        + bytes(32)
        + b"\x00"
        + struct.pack("!H", len(ciphers))
        + ciphers
        + b"\x01\x00"
        + struct.pack("!H", len(extensions))
        + extensions
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def test_openssl_hello_is_not_a_browser() -> None:
    hello = parse_client_hello(openssl_hello())
    assert hello.sni == "api.cerebras.ai"
    assert hello.alpn == ("h2", "http/1.1")
    assert not hello.grease
    assert hello.client_class == "other"


def test_chrome_like_hello_is_a_browser() -> None:
    hello = parse_client_hello(chrome_like_hello())
    assert hello.sni == "playground.ai.cloudflare.com"
    assert hello.grease and hello.alps
    assert hello.client_class == "chrome"


def test_fingerprint_ignores_grease_and_extension_order() -> None:
    one = parse_client_hello(chrome_like_hello())
    assert one.fingerprint == parse_client_hello(chrome_like_hello()).fingerprint
    assert one.fingerprint != parse_client_hello(openssl_hello()).fingerprint


def test_grease_values() -> None:
    assert all(is_grease(v) for v in (0x0A0A, 0x1A1A, 0xFAFA))
    assert not any(is_grease(v) for v in (0x1301, 0x0A1A, 0xC02B))


@pytest.mark.parametrize("cut", [0, 3, 5, 40, 100])
def test_truncated_hello_is_refused(cut: int) -> None:
    data = openssl_hello()[:cut]
    with pytest.raises(NotClientHello):
        parse_client_hello(data)


def test_needed_bytes_and_non_tls() -> None:
    data = openssl_hello()
    assert needed_bytes(data[:3]) == 5
    assert needed_bytes(data) == len(data)
    with pytest.raises(NotClientHello):
        needed_bytes(b"GET / HTTP/1.1\r\n")
