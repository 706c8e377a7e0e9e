"""Agent answers that outlive their socket (the `agents_outlive_socket` knob), as a Durable Object's do.

With the knob, an answer whose socket drops (a `truncated` or `reset` fault) goes on without it;
its frames are kept. A new socket to the same agent gets `cf_agent_stream_resuming` for it, on
connect and again on a `cf_agent_stream_resume_request`. After the client's
`cf_agent_stream_resume_ack` it gets every frame sent so far again, marked `replay` (the last one
also `replayComplete`), then the rest live, or the `done` frame if the answer ended meanwhile.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import agents_protocol as agents


@dataclass
class LiveAnswer:
    """One answer of an agent and the socket its live frames go to (None while there is none)."""

    request_id: str
    frame: Callable[[str], str]  # a body's `cf_agent_use_chat_response` frame
    socket: Any  # the AgentSession it streams to
    sent: list[str] = field(default_factory=list)  # every body, sent or kept for a replay
    last: str | None = None  # the done frame, once the answer ended
    task: asyncio.Task[Any] | None = None

    async def send(self, body: str) -> None:
        """Keep `body`, and send it to the socket if one is attached (a failed send detaches it)."""
        self.sent.append(body)
        await self._to_socket(self.frame(body))

    async def end(self, frame: str) -> None:
        self.last = frame
        await self._to_socket(frame)

    def drop(self) -> None:
        """The socket went away: the answer goes on alone."""
        self.socket = None

    async def resume(self, socket: Any) -> None:
        """Replay what was sent to `socket`, then stream the rest to it (or end the answer)."""
        for frame in agents.replay(self.request_id, self.sent):  # what comes meanwhile included
            await socket.send(frame)
        if self.last is not None:
            await socket.ws.send_str(self.last)
        else:
            self.socket = socket  # no await since the replay's last length check: nothing is missed

    async def _to_socket(self, frame: str) -> None:
        socket = self.socket
        if socket is None or socket.ws.closed:
            return
        try:
            await socket.ws.send_str(frame)
        except ConnectionError:
            self.socket = None

