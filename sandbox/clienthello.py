"""Read a TLS ClientHello and tell a Chrome-like client from any other (pure, no I/O).

Cloudflare binds `cf_clearance` to the TLS fingerprint of the client that earned it. The sandbox does
the same with a coarse class: "chrome" when the hello carries GREASE values (RFC 8701) among its
cipher suites and extensions, as Chromium and curl_cffi's Chrome impersonation do; "other" for
OpenSSL-based clients (curl, Python's ssl, aiohttp, requests), which never send them. (Chrome's ALPS
extension is recorded too, but not required: Chrome leaves it out where it offers no h2, as on
WebSocket connections.)
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

HANDSHAKE = 0x16
CLIENT_HELLO = 0x01
EXT_SERVER_NAME = 0
EXT_GROUPS = 10
EXT_POINT_FORMATS = 11
EXT_ALPN = 16
EXT_ALPS = (17513, 17613)


class NotClientHello(ValueError):
    """The bytes are not (the start of) a TLS ClientHello."""


@dataclass(frozen=True)
class ClientHello:
    """What the sandbox keeps of one ClientHello."""

    sni: str | None
    alpn: tuple[str, ...]
    ciphers: tuple[int, ...] = field(repr=False)
    extensions: tuple[int, ...] = field(repr=False)
    grease: bool
    alps: bool
    fingerprint: str  # a JA3-like hash with GREASE dropped and extensions sorted

    @property
    def client_class(self) -> str:
        """"chrome" for a Chrome-like hello, "other" for anything else."""
        return "chrome" if self.grease else "other"


MAX_RECORD = 1 << 14


def is_grease(value: int) -> bool:
    """True for the reserved GREASE values 0x0a0a, 0x1a1a, ... 0xfafa."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def needed_bytes(buffer: bytes) -> int:
    """How many bytes the first TLS record needs in total (5 until its header is known)."""
    if len(buffer) < 5:
        return 5
    if buffer[0] != HANDSHAKE:
        raise NotClientHello("not a TLS handshake record")
    length = struct.unpack_from("!H", buffer, 3)[0]
    if length > MAX_RECORD:  # RFC 8446 5.1; the proxy could never peek that much either
        raise NotClientHello(f"a TLS record of {length} bytes (more than 2^14)")
    return 5 + length


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise NotClientHello("ClientHello is truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("!H", self.take(2))[0]

    def vector(self, length_bytes: int) -> bytes:
        size = self.u8() if length_bytes == 1 else self.u16()
        return self.take(size)


def _u16_list(data: bytes) -> tuple[int, ...]:
    return tuple(struct.unpack(f"!{len(data) // 2}H", data[: len(data) // 2 * 2]))


def parse_client_hello(record: bytes) -> ClientHello:
    """Parse the first TLS record of a connection; raise NotClientHello if it is not one."""
    if len(record) < needed_bytes(record):
        raise NotClientHello("ClientHello is truncated")
    body = _Reader(record[5 : needed_bytes(record)])
    if body.u8() != CLIENT_HELLO:
        raise NotClientHello("first handshake message is not a ClientHello")
    body.take(3)  # handshake length
    version = body.u16()
    body.take(32)  # random
    body.vector(1)  # session id
    ciphers = _u16_list(body.vector(2))
    body.vector(1)  # compression methods
    extensions: list[int] = []
    sni: str | None = None
    alpn: list[str] = []
    groups: tuple[int, ...] = ()
    point_formats: tuple[int, ...] = ()
    if body.pos < len(body.data):
        ext_reader = _Reader(body.vector(2))
        while ext_reader.pos < len(ext_reader.data):
            ext_type, ext_data = ext_reader.u16(), ext_reader.vector(2)
            extensions.append(ext_type)
            if ext_type == EXT_SERVER_NAME and len(ext_data) > 5:
                sni = ext_data[5:].decode("ascii", "replace")
            elif ext_type == EXT_ALPN:
                inner = _Reader(ext_data[2:])
                while inner.pos < len(inner.data):
                    alpn.append(inner.vector(1).decode("ascii", "replace"))
            elif ext_type == EXT_GROUPS:
                groups = _u16_list(ext_data[2:])
            elif ext_type == EXT_POINT_FORMATS:
                point_formats = tuple(ext_data[1:])

    def plain(values: tuple[int, ...] | list[int]) -> list[int]:
        return [v for v in values if not is_grease(v)]

    ja3 = ",".join(
        [
            str(version),
            "-".join(map(str, plain(ciphers))),
            "-".join(map(str, sorted(plain(extensions)))),
            "-".join(map(str, plain(groups))),
            "-".join(map(str, point_formats)),
        ]
    )
    return ClientHello(
        sni=sni,
        alpn=tuple(alpn),
        ciphers=ciphers,
        extensions=tuple(extensions),
        grease=any(map(is_grease, ciphers)) and any(map(is_grease, extensions)),
        alps=any(ext in EXT_ALPS for ext in extensions),
        fingerprint=hashlib.md5(ja3.encode(), usedforsecurity=False).hexdigest(),
    )
