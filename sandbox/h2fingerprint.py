"""Read a client's HTTP/2 fingerprint from the first bytes of a connection (pure, no I/O).

Anti-bot fronts compare what a client's HTTP/2 layer sends first with its TLS hello and its user
agent. The usual summary (Akamai's) is `SETTINGS|WINDOW_UPDATE|PRIORITY|PSEUDO-HEADER ORDER`, for
current Chrome `1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p`: the SETTINGS in the order
sent, the connection WINDOW_UPDATE increment, the PRIORITY frames sent before the first request
("0": none) and the order of the pseudo-headers of the first request.

The class is "chrome" when those values are a Chromium's: HEADER_TABLE_SIZE 65536,
ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 6291456 and MAX_HEADER_LIST_SIZE 262144 (older Chromes also
sent MAX_CONCURRENT_STREAMS 1000), a connection window raised by 15663105, and `m,a,s,p`. Anything
else is "other": h2's, httpx's, Go's, curl's and nghttp2's defaults all differ in several values.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER = 9
HEADERS, PRIORITY, SETTINGS, WINDOW_UPDATE, CONTINUATION = 1, 2, 4, 8, 9
FLAG_END_HEADERS, FLAG_PADDED, FLAG_PRIORITY = 0x4, 0x8, 0x20
PSEUDO_LETTERS = {":method": "m", ":authority": "a", ":scheme": "s", ":path": "p", ":protocol": "r"}

CHROME_SETTINGS = {1: 65536, 2: 0, 4: 6291456, 6: 262144}
CHROME_ORDERS = ((1, 2, 4, 6), (1, 3, 4, 6), (1, 2, 3, 4, 6))
CHROME_WINDOW_UPDATE = 15663105
CHROME_PSEUDO = "m,a,s,p"


class NotHTTP2(ValueError):
    """The bytes are not (the start of) an HTTP/2 client connection."""


@dataclass(frozen=True)
class H2Fingerprint:
    """What a client's HTTP/2 layer sent before and with its first request."""

    settings: tuple[tuple[int, int], ...]
    window_update: int  # the connection-level increment, 0 if none came first
    priority_frames: tuple[str, ...]  # "stream:exclusive:depends:weight" of PRIORITY frames
    header_priority: str | None  # "exclusive:depends:weight" of the first HEADERS, if flagged
    pseudo_order: str  # e.g. "m,a,s,p"

    @property
    def akamai(self) -> str:
        """The fingerprint in Akamai's text form."""
        settings = ";".join(f"{k}:{v}" for k, v in self.settings)
        priority = ",".join(self.priority_frames) or "0"
        return f"{settings}|{self.window_update}|{priority}|{self.pseudo_order}"

    @property
    def client_class(self) -> str:
        """"chrome" when every value is a Chromium's, "other" otherwise."""
        return "chrome" if self.mismatch() is None else "other"

    def mismatch(self) -> str | None:
        """The first value that is not a Chromium's, in words; None when all are."""
        ids = tuple(k for k, _ in self.settings)
        values = dict(self.settings)
        if ids not in CHROME_ORDERS:
            return f"SETTINGS order {ids} is not Chrome's"
        for key, value in CHROME_SETTINGS.items():
            if key in values and values[key] != value:
                return f"SETTINGS {key}={values[key]} (Chrome sends {value})"
        if self.window_update != CHROME_WINDOW_UPDATE:
            return f"WINDOW_UPDATE {self.window_update} (Chrome sends {CHROME_WINDOW_UPDATE})"
        if self.pseudo_order != CHROME_PSEUDO:
            return f"pseudo-header order {self.pseudo_order} (Chrome sends {CHROME_PSEUDO})"
        return None


def _frames(data: bytes, start: int):
    pos = start
    while pos + FRAME_HEADER <= len(data):
        length = int.from_bytes(data[pos : pos + 3], "big")
        kind, flags = data[pos + 3], data[pos + 4]
        stream = struct.unpack_from("!I", data, pos + 5)[0] & 0x7FFFFFFF
        end = pos + FRAME_HEADER + length
        if end > len(data):
            return
        yield kind, flags, stream, data[pos + FRAME_HEADER : end]
        pos = end


def _priority(payload: bytes) -> str:
    dependency = struct.unpack_from("!I", payload)[0]
    exclusive = dependency >> 31
    return f"{exclusive}:{dependency & 0x7FFFFFFF}:{payload[4] + 1}"


def parse_preface(data: bytes) -> H2Fingerprint | None:
    """The fingerprint from a connection's first bytes; None until the first request has arrived.

    Raises NotHTTP2 if the bytes do not start with the HTTP/2 client preface.
    """
    if not data.startswith(PREFACE[: len(data)]) or len(data) < len(PREFACE):
        if len(data) >= len(PREFACE) or not PREFACE.startswith(data):
            raise NotHTTP2("no HTTP/2 client preface")
        return None
    settings: list[tuple[int, int]] = []
    window_update = 0
    priority_frames: list[str] = []
    block, header_priority, seen_settings = b"", None, False
    for kind, flags, stream, payload in _frames(data, len(PREFACE)):
        if kind == SETTINGS and not seen_settings and not flags & 0x1:
            seen_settings = True
            settings = [struct.unpack_from("!HI", payload, i) for i in range(0, len(payload) - 5, 6)]
        elif kind == WINDOW_UPDATE and stream == 0 and not window_update:
            window_update = struct.unpack_from("!I", payload)[0] & 0x7FFFFFFF
        elif kind == PRIORITY and len(payload) == 5:
            priority_frames.append(f"{stream}:{_priority(payload)}")
        elif kind in (HEADERS, CONTINUATION):
            if kind == HEADERS:
                pad = payload[0] if flags & FLAG_PADDED else 0
                payload = payload[1:] if flags & FLAG_PADDED else payload
                if flags & FLAG_PRIORITY:
                    header_priority, payload = _priority(payload), payload[5:]
                payload = payload[: len(payload) - pad] if pad else payload
            block += payload
            if flags & FLAG_END_HEADERS:
                return H2Fingerprint(
                    settings=tuple((int(k), int(v)) for k, v in settings),
                    window_update=window_update,
                    priority_frames=tuple(priority_frames),
                    header_priority=header_priority,
                    pseudo_order=_pseudo_order(block),
                )
    return None


def _pseudo_order(block: bytes) -> str:
    try:
        headers = hpack.Decoder().decode(block, raw=True)
    except hpack.HPACKError as exc:
        raise NotHTTP2(f"undecodable first header block: {exc}") from None
    names = [name.decode("latin-1") for name, _ in headers if name.startswith(b":")]
    return ",".join(PSEUDO_LETTERS.get(name, name) for name in names)
