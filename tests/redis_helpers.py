"""A real `redis-server` for the tests and the store benchmark, and subprocess workers using it.

`RedisServer` runs Debian's redis-server (installed by `make test`, see scripts/ensure-redis.sh)
on a free loopback port with a directory of its own (append-only file, fsync'd at every write, so
a restart loses nothing acknowledged), optionally TLS only (a trustme CA). The `redis_server` fixture stops and reaps it after the
test, also when the test fails. Run as a script, `python redis_helpers.py MODE ARGS...` is a
worker (modes at the end); the `workers` fixture starts them and always kills and reaps every one.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest
from cache_workers import Workers, expect_line  # noqa: F401 - expect_line is for the tests

WORKER = Path(__file__).resolve()
PASSWORD = "r3dis-pa55word-never-shown-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One redis-server process on 127.0.0.1, with its data in `directory`."""

    def __init__(self, directory: Path, *, password: str | None = None, tls: bool = False) -> None:
        self.directory = directory
        self.password = password
        self.tls = tls
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def url(self) -> str:
        """The store URL; over TLS (rediss://) it names the test CA."""
        auth = f"default:{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca_file}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _tls_args(self) -> list[str]:
        import trustme

        if not self.ca_file.exists():
            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            cert.private_key_pem.write_to_path(self.directory / "key.pem")
            cert.cert_chain_pems[0].write_to_path(self.directory / "cert.pem")
            ca.cert_pem.write_to_path(self.ca_file)
        return ["--tls-cert-file", str(self.directory / "cert.pem"), "--tls-key-file", str(self.directory / "key.pem"),
                "--tls-ca-cert-file", str(self.ca_file), "--tls-auth-clients", "no"]

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw:
                sock = ssl.create_default_context(cafile=self.ca_file).wrap_socket(raw, server_hostname="127.0.0.1") if self.tls else raw
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def start(self, *, same_port: bool = False) -> Self:
        """Start it (`same_port`: on the port it had before); returns once it answers."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: run 'make test' (it installs Debian's redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):
            port = self.port or free_port()
            ports = ["--port", "0", "--tls-port", str(port), *self._tls_args()] if self.tls else ["--port", str(port)]
            args = [binary, *ports, "--bind", "127.0.0.1", "--dir", str(self.directory)]
            args += ["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"]
            args += ["--logfile", str(self.directory / "redis.log"), "--databases", "2"]
            if self.password:
                args += ["--requirepass", self.password]
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _STARTED.append(self.proc)
            self.port = port
            deadline = time.monotonic() + 10
            try:
                while time.monotonic() < deadline and self.proc.poll() is None:
                    if self._ping():
                        return self
                    time.sleep(0.01)
            except BaseException:
                self.stop()  # never leave a server behind, whatever went wrong
                raise
            self.stop()
            if not same_port:
                self.port = 0  # taken meanwhile by someone else: try another
        raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (SIGTERM: clean; SIGKILL: a crash) and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, sig: int = signal.SIGKILL, down_for: float = 0.0) -> None:
        """Crash (or stop) the server, stay down `down_for` seconds, start it on the same port."""
        self.stop(sig)
        time.sleep(down_for)
        self.start(same_port=True)

    def command(self, *args: str | bytes) -> object:
        """Run one command with a plain synchronous client (test setup and inspection)."""
        import redis

        with redis.Redis.from_url(self.url) as client:
            return client.execute_command(*args)


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_leftover_redis() -> Iterator[None]:
    """Every test leaves no redis-server behind: one still running is killed, reaped, and fails it."""
    yield
    left = [proc for proc in _STARTED if proc.poll() is None]
    for proc in left:
        proc.kill()
        proc.wait(timeout=10)
    _STARTED.clear()
    assert not left, f"redis-server processes left behind: {[proc.pid for proc in left]}"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", password=PASSWORD).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Workers running this file's modes; all killed (also stopped ones) and reaped afterwards."""
    with Workers(tmp_path / "logs", script=WORKER) as started:
        yield started


# -- the workers ------------------------------------------------------------------------------


def _wait_for_go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def counted_updates(url: str, count: str, worker: str) -> None:
    """`count` updates of one record (one connection), each incrementing a shared and a per-worker
    counter."""
    from harvestkit.cache import SessionRecord, open_store

    def bump(record):
        record = record or SessionRecord("counter", source="import")
        record.extra["counter"] = record.extra.get("counter", 0) + 1
        record.extra[worker] = record.extra.get(worker, 0) + 1
        return record

    async def run(store) -> None:
        for _ in range(int(count)):
            await store.update("counter", bump)
        await store.aclose()

    store = open_store(url)
    _wait_for_go()
    asyncio.run(run(store))
    print("done", flush=True)


def refresher(url: str, marker: str, seconds: str, lease: str) -> None:
    """On "go", refresh a stale record; the harvest notes its pid in `marker` and takes `seconds`."""
    from harvestkit.cache import SessionRecord, open_store

    def harvest():
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(float(seconds))
        now = time.time()
        return SessionRecord("flight", harvested_at=now, expires_at=now + 3600, extra={"by": os.getpid()})

    store = open_store(url, lease=float(lease))
    _wait_for_go()
    record = store.refresh_sync("flight", harvest, timeout=30)
    print(json.dumps(record.to_dict()), flush=True)


def stalled_harvester(url: str, lease: str) -> None:
    """Refresh "flight"; the harvest says "harvesting", then waits for a line on stdin before it
    returns its record (by this pid). Prints "stored" or the error's type and token."""
    from harvestkit.cache import LeaseLost, SessionRecord, open_store

    def harvest():
        print("harvesting", flush=True)
        sys.stdin.readline()
        now = time.time()
        return SessionRecord("flight", harvested_at=now, expires_at=now + 3600, extra={"by": os.getpid()})

    store = open_store(url, lease=float(lease))
    try:
        store.refresh_sync("flight", harvest, force=True, timeout=30)
    except LeaseLost as exc:
        print(f"LeaseLost {exc.token}", flush=True)
    else:
        print("stored", flush=True)


MODES = {"update": counted_updates, "refresh": refresher, "stall": stalled_harvester}

if __name__ == "__main__":
    MODES[sys.argv[1]](*sys.argv[2:])
