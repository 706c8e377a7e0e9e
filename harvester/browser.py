"""Finding, starting and reliably stopping Chromium, driven over CDP by nodriver.

nodriver's own start sleeps and its `stop()` does not wait for the process; here the browser is
started in a process group of its own, its DevTools port is read from the profile, and `stop()` ends
the whole group and reaps it on every path (including cancellation), leaving no zombie behind.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from .errors import BrowserNotFound, BrowserStartError
from .lifeline import die_with_parent, recover_profile, scrub_profile, watch
from .reaper import become_subreaper, reap_group, start_ticks
from .stealth import Fingerprint, default_fingerprint, launch_env, launch_flags

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
USUAL_PATHS = (
    "/usr/bin/chromium",
    "/usr/lib/chromium/chromium",
    "/snap/bin/chromium",
    "/opt/google/chrome/chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)
INSTALL_HINT = (
    "no Chromium or Chrome found. Install one (Debian/Ubuntu: `sudo apt-get install -y chromium`), "
    "or set HARVESTKIT_BROWSER to the browser's executable"
)
BASE_FLAGS = (  # the fingerprint's flags (screen, languages, GPU) are in `stealth`
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-breakpad",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-search-engine-choice-screen",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-pings",
    "--password-store=basic",
    "--homepage=about:blank",
    "--disable-blink-features=AutomationControlled",  # navigator.webdriver stays false
)
MAX_TEMP_ROOT = 40  # + "/harvestkit-chromium-XXXXXXXX/org.chromium.Chromium.XXXXXX/SingletonSocket"
SINGLETON_LINKS = ("SingletonLock", "SingletonSocket", "SingletonCookie")
START_TIMEOUT = 20.0
CLOSE_GRACE = 2.0
POLL = 0.01  # seconds between checks of the browser process
_IMPORTED: set[str] = set()  # modules import_in_background has finished importing


def find_browser() -> str:
    """The browser to run: HARVESTKIT_BROWSER, then the usual names on PATH, then usual paths."""
    configured = os.environ.get("HARVESTKIT_BROWSER")
    if configured:
        path = shutil.which(configured) or configured
        if not os.access(path, os.X_OK):
            raise BrowserNotFound(f"HARVESTKIT_BROWSER={configured!r} is not an executable file")
        return path
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    for path in USUAL_PATHS:
        if os.access(path, os.X_OK):
            return path
    raise BrowserNotFound(INSTALL_HINT)


def browser_version(executable: str) -> tuple[str, int]:
    """The browser's version string and its major number, from `--version` (remembered per file)."""
    try:
        st = os.stat(executable)
    except OSError as exc:
        raise BrowserStartError(f"cannot run {executable}: {exc.strerror}") from None
    return _version(executable, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _version(executable: str, _mtime_ns: int, _size: int) -> tuple[str, int]:
    try:
        output = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=15, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrowserStartError(f"cannot run {executable} --version: {exc}") from None
    match = re.search(r"(\d+)\.(\d+)\.(\d+)\.(\d+)", output)
    if not match:
        raise BrowserStartError(f"{executable} --version printed no version: {output.strip()[:200]!r}")
    return match.group(0), int(match.group(1))


def desktop_user_agent(major: int) -> str:
    """The user agent a headful Chrome of this major version sends on this platform."""
    if sys.platform == "darwin":
        system = "Macintosh; Intel Mac OS X 10_15_7"
    elif sys.platform.startswith("win"):
        system = "Windows NT 10.0; Win64; x64"
    else:
        system = "X11; Linux x86_64"
    return (
        f"Mozilla/5.0 ({system}) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.0.0 Safari/537.36"
    )


def import_in_background(name: str) -> asyncio.Future[None]:
    """Import module `name` in a daemon thread (nodriver takes a second or more: it is imported
    while the browser starts); done when it is imported.

    Not in the loop's executor, and never waited for on a failure or cancellation: a stop
    (SIGTERM, Ctrl-C) tears the browser down at once, and neither asyncio.run's clean-up nor the
    interpreter's exit waits for an import that is slow or stuck.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    if name in _IMPORTED:  # not `sys.modules`: a module is there while another thread imports it
        done.set_result(None)
        return done

    def settle(error: BaseException | None) -> None:
        if done.done():  # cancelled: nobody waits any more
            return
        done.set_exception(error) if error is not None else done.set_result(None)

    def work() -> None:
        error: BaseException | None = None
        try:
            importlib.import_module(name)
            _IMPORTED.add(name)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting task
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=work, name=f"harvestkit-import-{name}", daemon=True).start()
    return done


def _short_temp_root() -> str:
    """A temp root short enough for the Unix socket Chromium makes below it (108 bytes at most)."""
    root = tempfile.gettempdir()
    if len(root) > MAX_TEMP_ROOT and os.path.isdir("/tmp"):
        return "/tmp"
    return root


@dataclass
class LaunchOptions:
    """How to start one browser."""

    executable: str | None = None  # None: find_browser()
    headless: bool = True
    user_data_dir: str | Path | None = None  # None: a temporary profile, removed at stop
    proxy: str | None = None
    spki_pins: tuple[str, ...] = ()
    extra_args: list[str] = field(default_factory=list)
    # what the browser shows detectors (see `stealth`): by default the defaults and environment;
    # None: stealth off, headless Chromium as it comes
    fingerprint: Fingerprint | None = field(default_factory=default_fingerprint)


class Chromium:
    """One running browser: `async with Chromium(options) as chromium: chromium.browser.get(url)`."""

    def __init__(self, options: LaunchOptions | None = None) -> None:
        self.options = options or LaunchOptions()
        self.browser: Any = None  # nodriver.Browser once started
        self.user_agent = ""
        self.version = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._profile: Path | None = None
        self._temporary_profile = False
        self._stderr: Any = None
        self._tmpdir: str | None = None  # the browser's TMPDIR (its singleton socket lives there)
        self._started_ticks = 0
        self._fingerprint: Fingerprint | None = None
        self._watchdog: Any = None  # see harvester.lifeline

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def fingerprint(self) -> Fingerprint | None:
        """What the browser was started to show (None: stealth off)."""
        return self._fingerprint

    @property
    def profile_dir(self) -> Path | None:
        return self._profile

    @property
    def returncode(self) -> int | None:
        """The browser's exit status once it has exited (negative: the signal), else None."""
        return self._process.poll() if self._process else None

    def arguments(self, executable: str) -> list[str]:
        """The command line, without the executable."""
        assert self._profile is not None
        self.version, major = browser_version(executable)
        self.user_agent = desktop_user_agent(major)
        args = [*BASE_FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-port=0"]
        args.append(f"--user-agent={self.user_agent}")
        args += launch_flags(self._fingerprint, self.options.headless)
        if self.options.headless:
            args.append("--headless=new")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")
        if self.options.proxy:
            args.append(f"--proxy-server={self.options.proxy}")
        if self.options.spki_pins:
            args.append("--ignore-certificate-errors-spki-list=" + ",".join(self.options.spki_pins))
        return [*args, *self.options.extra_args, "about:blank"]

    async def start(self) -> Chromium:
        executable = self.options.executable or find_browser()
        if self.options.user_data_dir is None:
            self._profile = Path(tempfile.mkdtemp(prefix="harvestkit-profile-"))
            self._temporary_profile = True
        else:
            self._profile = Path(self.options.user_data_dir)
            self._profile.mkdir(mode=0o700, parents=True, exist_ok=True)
        port_file = self._profile / "DevToolsActivePort"
        with contextlib.suppress(FileNotFoundError):
            port_file.unlink()
        try:
            self._fingerprint = self.options.fingerprint
            args = self.arguments(executable)
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - open while the browser runs
            # Chromium's own temporary files (the singleton socket's directory...) go into a
            # directory of ours, removed at stop even when the browser was killed.
            self._tmpdir = tempfile.mkdtemp(prefix="harvestkit-chromium-", dir=_short_temp_root())
            recover_profile(self._profile, self._tmpdir)
            become_subreaper()
            # A plain Popen, not asyncio's: its exit is polled here, and no child watcher races
            # the synchronous reaping in kill_now().
            self._process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; see above
                [executable, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                start_new_session=True,
                preexec_fn=die_with_parent,
                env={**os.environ, **launch_env(self._fingerprint), "TMPDIR": self._tmpdir},
            )
            self._started_ticks = start_ticks(self._process.pid)
            self._watchdog = watch(self._process, self._tmpdir, self._profile, self._temporary_profile)
            importing = import_in_background("nodriver")
            try:
                port, path = await self._wait_for_port(port_file)
                await importing
            finally:
                importing.cancel()  # when not done: nobody waits for it (see import_in_background)
            self.browser = await self._connect(executable, port, path)
        except BaseException:
            await self.stop()
            raise
        return self

    async def _wait_for_port(self, port_file: Path) -> tuple[int, str]:
        """The DevTools port and browser endpoint path Chromium writes into the profile."""
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrowserStartError(
                    f"the browser exited with code {self._process.returncode} at start: {self.output_tail()}"
                )
            with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
                port, path = port_file.read_text().splitlines()[:2]
                return int(port), path
            await asyncio.sleep(POLL)
        raise BrowserStartError(f"the browser did not open its DevTools port in {START_TIMEOUT:g} s")

    async def _connect(self, executable: str, port: int, path: str) -> Any:
        """Attach nodriver to the browser's endpoint (nodriver's own start sleeps, then polls HTTP)."""
        import nodriver  # imported here: the rest of harvestkit runs without it
        from nodriver.core.browser import HTTPApi

        config = nodriver.Config(
            user_data_dir=str(self._profile),
            headless=self.options.headless,
            browser_executable_path=executable,
            host="127.0.0.1",
            port=port,
        )
        browser = nodriver.Browser(config)
        browser._http = HTTPApi(("127.0.0.1", port))
        browser.websocket_url = f"ws://127.0.0.1:{port}{path}"
        await browser.attach()
        await browser.update_targets()
        return browser

    def output_tail(self, limit: int = 2000) -> str:
        """The end of what the browser wrote to stderr."""
        if self._stderr is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(size - limit, 0))
            return self._stderr.read().decode("utf-8", "replace").strip()
        return ""

    async def stop(self) -> None:
        """Close over CDP, then terminate, then kill the process group; reap; remove temp files."""
        try:
            await self._close_gracefully()
        finally:
            self.kill_now()

    async def _close_gracefully(self) -> None:
        browser, self.browser = self.browser, None
        if browser is not None and browser.socket is not None:
            from nodriver import cdp

            # The browser drops the connection as it exits, so the command gets no answer:
            # send it and wait for the process instead.
            closing = asyncio.ensure_future(browser.send(cdp.browser.close()))
            try:
                await self._wait_or_signal()
            finally:
                closing.cancel()
                await asyncio.gather(closing, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(browser.aclose(), CLOSE_GRACE)
        else:
            await self._wait_or_signal(signal.SIGTERM)

    async def _wait_or_signal(self, first: int | None = None) -> None:
        """Wait for the browser to exit; SIGTERM, then SIGKILL its group after each grace period."""
        process = self._process
        if process is None:
            return
        for sig in (first, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                self._signal_group(sig)
            deadline = time.monotonic() + CLOSE_GRACE
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    return
                await asyncio.sleep(POLL)

    def _signal_group(self, sig: int) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, sig)

    def kill_now(self) -> None:
        """Synchronous last resort: kill the group, reap the process, remove temporary files."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # also whatever of the group outlived it
            process.wait()
            reap_group(process.pid, self._started_ticks)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        if process is not None and self._profile is not None:
            for name in SINGLETON_LINKS:  # left in the profile when the browser was killed
                with contextlib.suppress(OSError):
                    if (self._profile / name).is_symlink():
                        (self._profile / name).unlink()
        if self._temporary_profile and self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._temporary_profile = False
        if process is not None:
            scrub_profile(self._profile)
        if self._watchdog is not None:
            self._watchdog, watchdog = None, self._watchdog
            watchdog.release()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
