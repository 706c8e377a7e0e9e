"""playground.ai.cloudflare.com behind the challenge: the page, `/api/*` and the agents WebSocket."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import WSMsgType, web

from . import agents_protocol as agents
from . import cloudflare_wire as wire
from . import keys
from .cloudflare_front import HOST, CloudflareFront
from .agents_live import LiveAnswer
from .coalesce import coalesced
from .state import Fault, LoggedHeaders, LoggedRequest, SandboxState
from .streaming import pump, stream_http
from .textgen import make_reply

ORIGIN = "https://" + HOST
PLAYGROUND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Workers AI LLM Playground</title></head>
<body class="loading"><div id="root">Loading models&hellip;</div>
<script>
const GENERATION = "%s";
function getModelsOverSocket() {
  return new Promise((resolve, reject) => {
    const id = Math.random().toString(36).slice(2, 10);
    const ws = new WebSocket("wss://" + location.host + "/agents/playground/Cloudflare-AI-Playground-" + id
                             + "?_pk=" + crypto.randomUUID());
    ws.onopen = () => ws.send(JSON.stringify({type: "rpc", id: "r1", method: "getModels", args: []}));
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === "rpc" && frame.id === "r1") { resolve(frame.result); }
    };
    ws.onerror = () => reject(new Error("socket failed"));
  });
}
async function start() {
  const models = GENERATION === "agents" ? await getModelsOverSocket()
                                         : (await (await fetch("/api/models")).json()).models;
  document.getElementById("root").textContent = models.length + " models";
  document.body.dataset.state = "ready";
  document.body.classList.remove("loading");
}
start().catch(() => { document.body.dataset.state = "error"; });
</script></body></html>
"""


def forced_error(fault: Fault, front: CloudflareFront) -> web.Response:
    """The response for a fault's forced status, as Cloudflare's edge answers."""
    status = fault.status or 500
    headers = {}
    if fault.retry_after is not None:
        headers["retry-after"] = f"{fault.retry_after:g}"
    if status == 403:
        return front.challenge_page()
    if status == 401:
        return web.json_response({"error": "Unauthorized"}, status=401)
    if status == 400:
        return web.Response(status=400)
    code = 1015 if status == 429 else status
    return web.Response(status=status, text=f"error code: {code}", headers=headers)


class CloudflarePlayground:
    """Routes of the playground itself."""

    def __init__(self, state: SandboxState, front: CloudflareFront) -> None:
        self.state, self.front = state, front
        self.live: dict[str, LiveAnswer] = {}  # agent name -> its answer that outlives sockets

    def app(self) -> web.Application:
        app = web.Application()
        self.front.install(app)
        app.router.add_get("/", self.page)
        app.router.add_get("/api/models", self.models)
        app.router.add_post("/api/inference", self.inference)
        app.router.add_get("/agents/playground/{name}", self.agent)
        return app

    @property
    def generation(self) -> str:
        return self.state.knobs.generation

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=PLAYGROUND_PAGE % self.generation, content_type="text/html")

    async def models(self, request: web.Request) -> web.Response:
        request[keys.ROUTE] = "cloudflare.models"
        if self.generation == "agents":
            raise web.HTTPNotFound()
        fault = self.state.take_fault("cloudflare.models")
        if fault is not None and fault.status:
            return forced_error(fault, self.front)
        return web.json_response(
            {"models": wire.model_objects()}, headers={"Cache-Control": "s-maxage=300"}
        )

    async def inference(self, request: web.Request) -> web.StreamResponse:
        request[keys.ROUTE] = "cloudflare.chat"
        generation = self.generation
        if generation == "agents":
            raise web.HTTPNotFound()
        fault = self.state.take_fault("cloudflare.chat")
        if fault is not None and fault.status:
            return forced_error(fault, self.front)
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400)
        if (
            not isinstance(body, dict)
            or body.get("model") not in wire.TEXT_MODELS
            or not isinstance(body.get("messages"), list)
            or not body["messages"]
        ):
            return web.Response(status=400)
        reply = make_reply(
            body["messages"],
            system=body.get("system_message"),
            max_tokens=body.get("max_tokens"),
            reply_tokens=self.state.knobs.reply_tokens,
            reasoning=body["model"] in wire.REASONING_MODELS,
        )
        headers = {"Content-Type": wire.CONTENT_TYPES[generation], "Cache-Control": "no-cache"}
        if generation == "data-stream":
            headers["content-encoding"] = "identity"
        if generation == "ui-stream":
            headers["x-vercel-ai-ui-message-stream"] = "v1"
        return await stream_http(
            request,
            web.StreamResponse(headers=headers),
            wire.ENCODERS[generation](reply, self.state.knobs.field_rng()),
            fault=fault,
            pace=self.state.knobs.pace,
            malformed=wire.MALFORMED[generation],
            error=wire.ERRORS[generation],
        )

    # -- the agents WebSocket -----------------------------------------------------------------
    async def agent(self, request: web.Request) -> web.StreamResponse:
        request[keys.ROUTE] = "cloudflare.chat"
        if self.generation != "agents":
            raise web.HTTPNotFound()
        fault = self.state.take_fault("cloudflare.chat", status_only=True)
        if fault is not None:
            return forced_error(fault, self.front)
        if request.headers.get("Origin") != ORIGIN:
            request[keys.NOTE] = "WebSocket from a foreign origin"
            return web.Response(status=403, text="Forbidden")
        if self.state.knobs.upgrade_delay > 0:
            await asyncio.sleep(self.state.knobs.upgrade_delay)
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        session = AgentSession(self, request, ws)
        await session.run()
        return ws


class AgentSession:
    """One agent connection: its state and the chat streams running on it."""

    def __init__(self, playground: CloudflarePlayground, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.playground, self.request, self.ws = playground, request, ws
        self.protocol = playground.state.knobs.agents_protocol
        self.state: dict[str, Any] = agents.initial_state(self.protocol)
        self.streams: dict[str, asyncio.Task[None]] = {}
        self.name = request.match_info["name"]

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(wire.compact(frame))

    async def run(self) -> None:
        name = self.request.match_info["name"]
        await self.send({"type": "cf_agent_identity", "name": name, "agent": "playground"})
        await self.send({"type": "cf_agent_state", "state": self.state})
        await self.send({"type": "cf_agent_mcp_servers", "mcp": {"servers": {}, "tools": [], "prompts": [], "resources": []}})
        live = self.playground.live.get(name)
        if live is not None:  # an answer of this agent outlived its socket
            await self.send(agents.resuming(live.request_id))
        else:
            for extra in agents.after_greeting(self.protocol, self.playground.state.knobs.agents_resume):
                await self.send(extra)
        try:
            async for message in self.ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(message.data)
                except ValueError:
                    continue
                if isinstance(frame, dict):
                    await self.handle(frame)
        finally:
            live = self.playground.live.get(name)
            if live is not None and live.socket is self:
                live.drop()
            owned = [task for task in self.streams.values() if live is None or task is not live.task]
            for task in owned:
                task.cancel()
            await asyncio.gather(*owned, return_exceptions=True)

    async def handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "cf_agent_state" and isinstance(frame.get("state"), dict):
            if agents.echoes_state(self.protocol):
                self.state.update(frame["state"])
                await self.send({"type": "cf_agent_state", "state": self.state})
            else:  # replaces the state; goes to the agent's other sockets, not back to the sender
                self.state = dict(frame["state"])
        elif kind == "rpc" and frame.get("method") == "getModels":
            self.playground.state.requests.append(self.log_entry("cloudflare.models", "rpc getModels"))
            await self.send(
                {"type": "rpc", "id": frame.get("id"), "success": True, "result": wire.model_objects(), "done": True}
            )
        elif kind == "rpc":
            await self.send(
                {"type": "rpc", "id": frame.get("id"), "success": False, "error": "Unknown method"}
            )
        elif kind == "cf_agent_use_chat_request":
            request_id = str(frame.get("id"))
            self.streams[request_id] = asyncio.create_task(self.chat(request_id, frame))
        elif kind == "cf_agent_chat_request_cancel":
            task = self.streams.get(str(frame.get("id")))
            if task is not None:
                task.cancel()
        elif kind == "cf_agent_stream_resume_request":
            live = self.playground.live.get(self.name)
            await self.send(agents.resuming(live.request_id) if live is not None else agents.resume_answer(self.protocol))
        elif kind == "cf_agent_stream_resume_ack":
            live = self.playground.live.get(self.name)
            if live is not None and live.request_id == str(frame.get("id")) and live.socket is None:
                await live.resume(self)
                if live.last is not None:
                    del self.playground.live[self.name]
        elif kind == "cf_agent_chat_clear":
            await self.send({"type": "cf_agent_chat_messages", "messages": []})

    def log_entry(self, route: str, what: str) -> LoggedRequest:
        request = self.request
        return LoggedRequest(
            time=time.time(),
            tunnel=request.get(keys.TUNNEL_ID),
            host=HOST,
            method="WS",
            path=f"{request.path}#{what}",
            headers=LoggedHeaders(request.headers.items()),
            cookies=dict(request.cookies),
            client_class=request.get(keys.CLIENT_CLASS),
            route=route,
            status=101,
        )

    async def chat(self, request_id: str, frame: dict[str, Any]) -> None:
        entry = self.log_entry("cloudflare.chat", "cf_agent_use_chat_request")
        self.playground.state.requests.append(entry)
        try:  # unpaced, the answer's frames leave several to a write (coalesce.py)
            with coalesced(self.request.transport, self.playground.state.knobs.pace):
                entry.outcome = await self._chat(request_id, frame)
        except asyncio.CancelledError:
            entry.outcome = "cancelled"
        except ConnectionError:
            entry.outcome = "client_disconnected"
        finally:
            self.streams.pop(request_id, None)

    async def _chat(self, request_id: str, frame: dict[str, Any]) -> str:
        try:
            messages = json.loads((frame.get("init") or {}).get("body") or "")["messages"]
        except (ValueError, KeyError, TypeError, AttributeError):
            messages = None
        if not isinstance(messages, list) or not messages:
            return await self.fail(request_id, "Invalid chat request")
        model = self.state.get("model")
        if model not in wire.TEXT_MODELS:
            return await self.fail(request_id, f"Model not found: {model}")
        for frame_before in agents.before_answer(self.protocol, request_id):
            await self.send(frame_before)
        reply = make_reply(
            messages,
            system=self.state.get("system"),
            max_tokens=self.state.get("max_tokens"),
            reply_tokens=self.playground.state.knobs.reply_tokens,
            reasoning=model in wire.REASONING_MODELS,
        )
        fault = self.playground.state.take_fault("cloudflare.chat")
        rng = self.playground.state.knobs.field_rng()
        chunks = wire.ui_bodies(reply, rng, lambda chunk: agents.shape_chunk(self.protocol, chunk))
        middle = wire.ui_count(reply) // 2 if self.protocol == "2026" else -1  # where interrupt() comes
        frame = wire.agent_responses(request_id, rng)
        error_body = json.dumps(wire.UI_ERROR)
        knobs = self.playground.state.knobs
        live = None
        if knobs.agents_outlive_socket:  # kept whole, to go on after a drop (agents_live.py)
            chunks = list(chunks)
            live = self.playground.live[self.name] = LiveAnswer(request_id, frame, self, task=self.streams.get(request_id))
        sent: list[str] = live.sent if live is not None else []

        async def send_body(body: str) -> None:
            if body is error_body and self.protocol == "2026":  # a plain-text error frame
                await self.ws.send_str(agents.error_frames(self.protocol, request_id, wire.UI_ERROR["errorText"])[0])
                return
            if live is not None:
                await live.send(body)
            else:
                await self.ws.send_str(frame(body))
                sent.append(body)
            if len(sent) == middle:
                await self.interrupt(request_id, sent)

        interrupting = middle >= 0 and (knobs.agents_recovering or knobs.agents_resume == "own")
        if live is None and fault is None and knobs.pace <= 0 and not interrupting:
            outcome = await self._unpaced(chunks, frame)
        else:
            outcome = await pump(
                chunks,
                send_body,
                fault=fault,
                pace=knobs.pace,
                malformed='{"type":"text-delta","id":"t1","delta":"bro',
                error=error_body,
            )
        if outcome in ("truncated", "reset"):  # drop the connection with no close frame
            transport = self.request.transport
            if transport is not None:
                transport.close() if outcome == "truncated" else transport.abort()
            if live is None:
                return outcome
            live.drop()  # the answer goes on without a socket until one resumes it
            for body in chunks[len(sent) :]:  # (the fault took the next one from the iteration)
                await send_body(body)
                if knobs.pace > 0:
                    await asyncio.sleep(knobs.pace)
            outcome = "outlived"
        error = outcome == "error" and self.protocol != "2026"
        last = wire.agent_response(request_id, "", done=True, error=error, rng=rng)
        if live is None:
            await self.ws.send_str(last)
            return outcome
        await live.end(last)
        if live.socket is not None and self.playground.live.get(self.name) is live:  # ended on a socket
            del self.playground.live[self.name]
        return outcome

    async def _unpaced(self, bodies: Iterable[str], frame: Callable[[str], str]) -> str:
        """An answer sent as fast as the socket takes it (no pace, fault, replay or pause): the
        same frames as ``pump`` sends, through aiohttp's ``send_frame`` and nothing else, so
        that the sandbox writes frames faster than a client reads them."""
        send = self.ws.send_frame
        for body in bodies:
            await send(frame(body).encode(), WSMsgType.TEXT)
        return "complete"

    async def interrupt(self, request_id: str, sent: list[str]) -> None:
        """Midway through an answer: the recovery and the resumption the knobs ask for."""
        knobs = self.playground.state.knobs
        if knobs.agents_recovering:
            await self.send(agents.recovering(request_id, True))
            await asyncio.sleep(agents.RECOVERY_PAUSE)
        if knobs.agents_resume == "own":
            for frame in agents.own_replay(request_id, sent):
                await self.send(frame)
        if knobs.agents_recovering:
            await self.send(agents.recovering(request_id, False))

    async def fail(self, request_id: str, text: str) -> str:
        """Report an error for `request_id` the way this protocol does."""
        for frame in agents.error_frames(self.protocol, request_id, text):
            await self.ws.send_str(frame)
        return "error"
