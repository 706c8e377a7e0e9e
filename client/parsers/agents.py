"""The Cloudflare playground's agents WebSocket (current generation): client frames to send
and the decoding of server frames."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from harvestkit.client.errors import ClientError, ProtocolError
from harvestkit.client.events import Event
from harvestkit.client.parsers._common import loads
from harvestkit.client.parsers.records import AgentFrame, decode, decoder
from harvestkit.client.parsers.uistream import UIStreamParser
from harvestkit.client.responses import error_from_body

__all__ = [
    "AgentChatParser",
    "RpcReply",
    "cancel_frame",
    "chat_request_frame",
    "frame_head",
    "parse_rpc_reply",
    "parse_state",
    "resume_ack_frame",
    "resume_request_frame",
    "rpc_frame",
    "state_frame",
    "ui_messages",
]


_FRAME = decoder(AgentFrame)
_DECODE = _FRAME.decode
_RESPONSE = "cf_agent_use_chat_response"


def _frame(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return "" if content is None else str(content)


def ui_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-style ``{role, content}`` messages -> UI messages ``{id, role, parts}``.

    Messages that already have ``parts`` keep them; each gets a fresh random ``id`` if it
    has none.
    """
    result = []
    for message in messages:
        parts = message.get("parts")
        if parts is None:
            parts = [{"type": "text", "text": _text_of(message.get("content"))}]
        result.append(
            {
                "id": str(message.get("id") or uuid.uuid4().hex[:16]),
                "role": message.get("role", "user"),
                "parts": list(parts),
            }
        )
    return result


def chat_request_frame(request_id: str, messages: Iterable[Mapping[str, Any]], **body: Any) -> str:
    """A ``cf_agent_use_chat_request`` frame; ``init.body`` is a JSON string holding the UI
    ``messages``, ``trigger: "submit-message"`` and any extra ``body`` fields."""
    payload = {"messages": ui_messages(messages), "trigger": "submit-message", **body}
    return _frame(
        {
            "type": "cf_agent_use_chat_request",
            "id": request_id,
            "init": {"method": "POST", "body": _frame(payload)},
        }
    )


def state_frame(
    model: str,
    *,
    temperature: float = 1,
    stream: bool = True,
    system: str = "",
    use_external_provider: bool = False,
    base: Mapping[str, Any] | None = None,
) -> str:
    """A ``cf_agent_state`` frame choosing the model and its settings.

    The server replaces its whole state with the one sent (spec 4.2) and does not echo it, so
    pass the state it announced on connect (:func:`parse_state`) as ``base``: its other keys
    (``externalProvider``, ``authMethod``, ``generativeUI``...) are kept."""
    state = {
        **(base or {}),
        "model": model,
        "temperature": temperature,
        "stream": stream,
        "system": system,
        "useExternalProvider": use_external_provider,
    }
    return _frame({"type": "cf_agent_state", "state": state})


def parse_state(frame: str | bytes) -> dict[str, Any] | None:
    """The agent's state carried by a server ``cf_agent_state`` frame, ``None`` for any other."""
    obj = _object(frame)
    if obj is None or obj.get("type") != "cf_agent_state" or not isinstance(obj.get("state"), dict):
        return None
    return obj["state"]


def frame_head(frame: str | bytes) -> tuple[Any, Any]:
    """The ``type`` and ``id`` of a server frame; (None, None) for one that is not a JSON object."""
    try:
        obj = decode(frame, _FRAME)
    except ValueError:
        return None, None
    return obj.type, obj.id


def resume_request_frame() -> str:
    """A ``cf_agent_stream_resume_request``: whatever of this agent is still streaming, please."""
    return _frame({"type": "cf_agent_stream_resume_request"})


def resume_ack_frame(request_id: str) -> str:
    """The ``cf_agent_stream_resume_ack`` for ``cf_agent_stream_resuming`` of ``request_id``."""
    return _frame({"type": "cf_agent_stream_resume_ack", "id": request_id})


def cancel_frame(request_id: str) -> str:
    """A ``cf_agent_chat_request_cancel`` frame for ``request_id``."""
    return _frame({"type": "cf_agent_chat_request_cancel", "id": request_id})


def rpc_frame(rpc_id: str, method: str = "getModels", args: Iterable[Any] = ()) -> str:
    """An ``rpc`` call frame (``getModels`` by default)."""
    return _frame({"type": "rpc", "id": rpc_id, "method": method, "args": list(args)})


def _object(frame: str | bytes) -> dict[str, Any] | None:
    """The frame as a JSON object, or ``None`` if it is not one (then it is not ours)."""
    if isinstance(frame, (bytes, bytearray)):
        frame = frame.decode("utf-8", "replace")
    try:
        value = loads(frame)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class RpcReply:
    """The result of an RPC call; ``done`` is False for a streamed partial result."""

    result: Any
    done: bool


def parse_rpc_reply(
    frame: str | bytes, rpc_id: str, provider: str = "cloudflare"
) -> RpcReply | None:
    """The reply to RPC ``rpc_id`` carried by ``frame``, ``None`` if the frame is another one;
    a failed call raises the matching error."""
    obj = _object(frame)
    if obj is None or obj.get("type") != "rpc" or obj.get("id") != rpc_id:
        return None
    if obj.get("success") is False or obj.get("error"):
        raise error_from_body(
            None, obj.get("error") or "RPC call failed", provider, default=ProtocolError
        )
    return RpcReply(obj.get("result"), obj.get("done") is not False)


class AgentChatParser(UIStreamParser):
    """Decodes the server frames of one chat request (``request_id``), spec 4.2.

    ``feed(frame)`` takes one WebSocket text message (``str`` or ``bytes``).  The ``body`` of
    each ``cf_agent_use_chat_response`` for our id is a UI-message chunk (JSON inside JSON):
    events as in :class:`UIStreamParser`; ``done: true`` ends the response.  A frame with
    ``error: true`` carries the server's plain error text (or an error object) in its body and
    raises the matching error, by default :class:`StreamBroken` with that text as its message
    and the answer so far as its ``text``; the ``done`` frame that follows it is not needed.
    Frames marked ``replay`` re-send the response's chunks from its start (a resumed stream):
    those already seen are skipped, so no text is doubled.  Other frames (state, identity,
    ``cf_agent_stream_resuming`` / ``_pending`` / ``_resume_none``, ``cf_agent_chat_recovering``,
    RPC replies...) and other ids are ignored.  ``close()`` raises :class:`StreamBroken` if the
    response did not end.
    """

    def __init__(self, request_id: str, provider: str = "cloudflare") -> None:
        super().__init__(provider)
        self.request_id = request_id
        self._done = False
        self._frames = 0  # body frames of our response handled (live or replayed)
        self._replayed = 0  # replayed frames seen since the last live one

    @property
    def done(self) -> bool:
        """Whether the response ended (its ``done: true`` frame, or an error frame)."""
        return self._done

    def feed(self, frame: str | bytes) -> list[Event]:  # type: ignore[override]
        """Decode one frame; return its events."""
        if self._done:
            return []
        try:
            obj = _DECODE(frame)
        except (msgspec.DecodeError, RecursionError):
            try:
                obj = decode(frame, _FRAME)  # JSON only the lenient reading accepts
            except ValueError:  # not JSON, or not an object: not a frame of ours
                return []
        if obj.type != _RESPONSE or obj.id != self.request_id:
            return []
        body = obj.body.strip() if obj.body.__class__ is str else ""
        if obj.error:
            self._done = True
            raise self._error_of(obj.error, body)
        out: list[Event] = []
        if obj.replay is True:
            self._replayed += 1
            if self._replayed <= self._frames:  # seen live already
                body = ""
        else:
            self._replayed = 0
        if body:
            self._frames += 1
            self._payload(body, out)
        if obj.done is True:
            self._done = True
            self._end(out)
        return out

    def _error_of(self, error: Any, body: str) -> ClientError:
        data = _object(body) if body[:1] in "{[" else None
        data = data or body or (error if isinstance(error, dict) else "the agent reported an error")
        return error_from_body(None, data, self.provider, text=self.text_so_far)

    def close(self) -> list[Event]:
        """Raise :class:`StreamBroken` if the response did not end (no ``done: true``)."""
        if not self._done:
            raise self._broken("the connection closed before the response finished")
        return []
