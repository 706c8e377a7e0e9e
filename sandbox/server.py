"""`Sandbox`: the replica hosts, their CA and the proxy, started and stopped as one.

    async with Sandbox() as sandbox:        # in the running event loop
        ...
    with Sandbox() as sandbox:              # in a thread of its own (sync code, or a loop that blocks)
        ...

Either way `sandbox.env` holds HARVESTKIT_PROXY and HARVESTKIT_CA_BUNDLE for the code under test.
"""
from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

from aiohttp import web
from harvestkit.common.har import load_har

from .accounts import SANDBOX_EMAIL, SANDBOX_PASSWORD, Accounts
from .app import HOSTS, build_app
from .control import handle_control
from .alpn import dispatch_factory
from .proxy import ForwardProxy
from .replay import Replay
from .state import Fault, Knobs, LoggedRequest, SandboxState
from .tls import Certificates, make_certificates


class Sandbox:
    """A local replica of inference.cerebras.ai, api.cerebras.ai and playground.ai.cloudflare.com."""

    hosts = HOSTS
    email = SANDBOX_EMAIL
    password = SANDBOX_PASSWORD

    def __init__(
        self,
        *,
        port: int = 0,
        knobs: Knobs | None = None,
        workdir: str | Path | None = None,
        replay: str | Path | None = None,
        paced: bool = False,
        proxy_auth: tuple[str, str] | None = None,
    ) -> None:
        """`replay`: serve that HAR recording's responses instead of the replicas (`paced`: with
        its recorded timing); see `harvestkit.sandbox.replay`."""
        self.proxy_auth = proxy_auth  # (user, password): the proxy answers 407 without them
        self.state = SandboxState(knobs)
        self.replay = Replay(load_har(replay), self.state, paced=paced) if replay is not None else None
        self.accounts = Accounts(self.state)
        self._port = port
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="harvestkit-sandbox-"))
        self.certificates: Certificates | None = None
        self._runner: web.AppRunner | None = None
        self._proxy: ForwardProxy | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    # -- lifecycle in the running loop -------------------------------------------------------
    async def start(self) -> Sandbox:
        try:
            self.certificates = make_certificates(self.hosts, self.workdir)
            app = self.replay.app() if self.replay is not None else build_app(self.state, self.accounts)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            self._proxy = ForwardProxy(
                self.state,
                self.hosts,
                self.certificates.server_context,
                dispatch_factory(self.state, self._runner.server),
                self._control,
                port=self._port,
                http1_tls=self.certificates.http1_context,
                auth=self.proxy_auth,
            )
            await self._proxy.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        if self._proxy is not None:
            await self._proxy.stop()
            self._proxy = None
        if self._runner is not None:
            await self._runner.shutdown()
            await self._runner.cleanup()
            self._runner = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _control(self, method: str, target: str, body: bytes) -> tuple[int, Any]:
        return handle_control(self.state, self.accounts, method, target, body)

    # -- lifecycle in a thread of its own ----------------------------------------------------
    def __enter__(self) -> Self:
        started = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._loop, self._stop_event = asyncio.get_running_loop(), asyncio.Event()
            try:
                await self.start()
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread, re-raised there
                failure.append(exc)
                started.set()
                return
            started.set()
            try:
                await self._stop_event.wait()
            finally:
                await self.stop()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), name="harvestkit-sandbox", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            raise failure[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    # -- what clients need ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._proxy is None:
            raise RuntimeError("the sandbox is not running")
        return self._proxy.port

    @property
    def proxy_url(self) -> str:
        """The proxy's URL, with the credentials of the authenticated mode."""
        if self.proxy_auth is None:
            return f"http://127.0.0.1:{self.port}"
        user, password = (quote(part, safe="") for part in self.proxy_auth)
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> str:
        if self.certificates is None:
            raise RuntimeError("the sandbox is not running")
        return str(self.certificates.ca_pem)

    @property
    def env(self) -> dict[str, str]:
        """The two variables that point harvestkit (and curl) at the sandbox."""
        return {"HARVESTKIT_PROXY": self.proxy_url, "HARVESTKIT_CA_BUNDLE": self.ca_bundle}

    def chromium_flags(self) -> list[str]:
        """What a Chromium needs to reach the sandbox: the proxy and the certificate pins."""
        assert self.certificates is not None
        return [f"--proxy-server=http://127.0.0.1:{self.port}", self.certificates.chromium_pin_flag]

    def exports(self) -> str:
        """Shell lines for `eval`, as `harvestkit sandbox` prints them."""
        lines = [f"export {name}={value}" for name, value in self.env.items()]
        lines.append("# Chromium: " + " ".join(self.chromium_flags()))
        return "\n".join(lines)

    # -- test conveniences ---------------------------------------------------------------------
    @property
    def knobs(self) -> Knobs:
        return self.state.knobs

    def set_knobs(self, **changes: Any) -> None:
        self.state.knobs.apply(changes)

    def fault(self, route: str, **fields: Any) -> Fault:
        """Force a failure on `route` (see `Fault` for the fields)."""
        fault = Fault(**fields)
        self.state.set_fault(route, fault)
        return fault

    def expire_all(self) -> None:
        self.state.expire_all()

    def requests(self, host: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        return self.state.find(host, path)

    def handshakes(self, host: str | None = None) -> int:
        return self.state.handshakes(host)
