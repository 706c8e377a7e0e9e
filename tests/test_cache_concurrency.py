"""AuthCache across processes: no lost updates, crash safety, single-flight, async lock waits."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import threading
import time

import pytest
from cache_workers import Workers, expect_line
from harvestkit.cache import AuthCache, CacheLockTimeout, SessionRecord

WRITERS, UPDATES = 8, 200


@pytest.fixture
def workers(tmp_path):
    with Workers(tmp_path / "logs") as started:
        yield started


def test_concurrent_updates_from_8_processes_lose_none(tmp_path, workers):
    root = tmp_path / "cache"
    procs = [workers.start("update", root, UPDATES, f"w{i}") for i in range(WRITERS)]
    for proc in procs:
        expect_line(proc, "ready")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(timeout=60) == 0, workers.stderr_of(proc)
        expect_line(proc, "done")
    extra = AuthCache(root).get_sync("counter").extra
    assert extra == {"counter": WRITERS * UPDATES} | {f"w{i}": UPDATES for i in range(WRITERS)}


def _kill_cycles(workers: Workers, root, cycles: int, seed: int, acked: list[int], errors: list[str]) -> None:
    """Start a writer, let it acknowledge some updates, SIGKILL it at a random moment; repeat."""
    rng = random.Random(seed)
    path = AuthCache(root).record_path("killed")
    for _ in range(cycles):
        proc = workers.start("writer", root)
        first = proc.stdout.readline()
        time.sleep(rng.uniform(0, 0.02))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        lines = (first + proc.stdout.read()).split("\n")[:-1]  # a cut-off last line is not an ack
        acked.extend(int(line) for line in lines)
        try:
            SessionRecord.from_dict(json.loads(path.read_bytes()))
        except Exception as exc:  # noqa: BLE001 - any failure to parse is the bug we look for
            errors.append(f"unparsable after a kill: {type(exc).__name__}: {exc}")


def test_writers_killed_at_random_moments_never_corrupt_or_lose_acknowledged_updates(tmp_path, workers):
    root = tmp_path / "cache"
    acked: list[int] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=_kill_cycles, args=(workers, root, 50, seed, acked, errors)) for seed in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads)
    assert len(workers.procs) == 200 and not errors
    final = AuthCache(root).get_sync("killed")
    assert acked and final.extra["counter"] >= max(acked)
    assert final.extra["counter"] >= len(acked)  # every acknowledged increment is in the file
    assert not list((root / "killed").glob("*.corrupt-*"))


def test_single_flight_refresh_across_6_processes_harvests_once(tmp_path, workers):
    root, marker = tmp_path / "cache", tmp_path / "harvests.txt"
    AuthCache(root).put_sync(SessionRecord("flight", harvested_at=time.time() - 7200, expires_at=time.time() - 1))
    procs = [workers.start("refresh", root, marker) for _ in range(6)]
    for proc in procs:
        expect_line(proc, "ready")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [json.loads(proc.stdout.readline()) for proc in procs]
    harvesters = marker.read_text().split()
    assert len(harvesters) == 1
    assert all(result == results[0] for result in results)
    assert results[0]["extra"] == {"by": int(harvesters[0])}
    assert AuthCache(root).get_sync("flight").to_dict() == results[0]


class Ticker:
    """Counts 10 ms ticks of the event loop: a blocked loop stops counting."""

    def __init__(self) -> None:
        self.ticks = 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1


async def test_async_lock_waits_keep_the_event_loop_running(tmp_path, workers):
    cache = AuthCache(tmp_path / "cache")
    cache.put_sync(SessionRecord("cerebras"))
    holder = workers.start("hold", cache.root, "cerebras", "", 30)
    await asyncio.to_thread(expect_line, holder, "locked")
    ticker = Ticker()
    started = time.monotonic()
    with pytest.raises(CacheLockTimeout) as info:
        await cache.update("cerebras", lambda r: r, timeout=0.6)
    assert info.value.holder_pid == holder.pid and f"pid {holder.pid}" in str(info.value)
    assert time.monotonic() - started >= 0.6
    assert ticker.ticks >= 30
    ticker.task.cancel()


async def test_async_waits_end_when_another_process_releases(tmp_path, workers):
    cache = AuthCache(tmp_path / "cache")
    cache.put_sync(SessionRecord("cerebras", expires_at=0.0))
    record_holder = workers.start("hold", cache.root, "cerebras", "", 0.5)
    refresh_holder = workers.start("hold", cache.root, "cerebras", ".refresh", 0.5)
    for proc in (record_holder, refresh_holder):
        await asyncio.to_thread(expect_line, proc, "locked")
    ticker = Ticker()

    async def harvest():
        return SessionRecord("cerebras", extra={"async": True})

    updated, refreshed = await asyncio.gather(
        cache.update("cerebras", lambda r: SessionRecord("cerebras", expires_at=0.0, extra={"updated": True}), timeout=10),
        cache.refresh("cerebras", harvest, timeout=10),
    )
    assert updated.extra == {"updated": True} and refreshed.extra == {"async": True}
    assert ticker.ticks >= 25
    ticker.task.cancel()


async def test_one_process_s_async_writers_queue_in_memory_not_on_the_file(tmp_path, monkeypatch) -> None:
    """40 concurrent updates in one event loop (40 Cloudflare chats merging the cookies their
    responses set): none is lost, and none finds the file lock taken, because they take turns
    in memory. Polling the file, waiters slept up to 50 ms while it was free (1.9 s for 40)."""
    import filelock

    cache = AuthCache(tmp_path)
    cache.put_sync(SessionRecord("cerebras", extra={"n": 0}))
    refused: list[str] = []
    acquire = filelock.FileLock.acquire

    def counting(self, *args, **kwargs):
        try:
            return acquire(self, *args, **kwargs)
        except filelock.Timeout:
            refused.append(self.lock_file)
            raise

    monkeypatch.setattr(filelock.FileLock, "acquire", counting)

    def bump(record: SessionRecord | None) -> SessionRecord:
        record.extra["n"] += 1
        return record

    await asyncio.gather(*(cache.update("cerebras", bump) for _ in range(40)))
    assert cache.get_sync("cerebras").extra["n"] == 40
    assert refused == []
