"""Several processes (standing in for hosts) sharing one real Redis: no lost updates, single-flight
refresh with a fenced lease, a killed or stalled holder, a Redis server restarted mid-run, and
three `harvestkit serve` gateways with a real browser harvesting once among them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import pytest
from harvester_helpers import need_browser
from harvestkit.cache import LeaseLost, RedisStore, SessionRecord, StoreTimeout, StoreUnavailable, open_store
from redis_helpers import PASSWORD, expect_line, no_leftover_redis, redis_server, workers  # noqa: F401 - fixtures

WRITERS, UPDATES = 8, 200
LEASE = 1.0  # long enough that a loaded machine's scheduling delays do not look like a dead holder


def stale(store: RedisStore) -> None:
    store.put_sync(SessionRecord("flight", harvested_at=time.time() - 7200, expires_at=time.time() - 1))


def go(procs) -> None:
    for proc in procs:
        expect_line(proc, "ready")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()


def test_concurrent_updates_from_8_processes_lose_none(redis_server, workers):
    procs = [workers.start("update", redis_server.url, UPDATES, f"w{i}") for i in range(WRITERS)]
    go(procs)
    for proc in procs:
        assert proc.wait(timeout=90) == 0, workers.stderr_of(proc)
        expect_line(proc, "done")
    extra = open_store(redis_server.url).get_sync("counter").extra
    assert extra == {"counter": WRITERS * UPDATES} | {f"w{i}": UPDATES for i in range(WRITERS)}


def test_single_flight_across_6_processes_harvests_once_even_past_the_lease(redis_server, workers, tmp_path):
    marker = tmp_path / "harvests.txt"
    stale(open_store(redis_server.url))
    # The harvest outlasts the lease: only the renewal keeps the others waiting.
    procs = [workers.start("refresh", redis_server.url, marker, 2.5 * LEASE, LEASE) for _ in range(6)]
    go(procs)
    results = [json.loads(proc.stdout.readline() or "null") for proc in procs]
    harvesters = marker.read_text().split()
    assert len(harvesters) == 1, harvesters
    assert all(result == results[0] for result in results)
    assert results[0]["extra"] == {"by": int(harvesters[0])}
    assert open_store(redis_server.url).get_sync("flight").to_dict() == results[0]


async def test_a_holder_killed_with_sigkill_is_taken_over_once_its_lease_runs_out(redis_server, workers):
    store = open_store(redis_server.url, lease=LEASE)
    stale(store)
    holder = workers.start("stall", redis_server.url, LEASE)
    await asyncio.to_thread(expect_line, holder, "harvesting")
    harvests = []

    async def harvest():
        harvests.append(1)
        return SessionRecord("flight", expires_at=time.time() + 3600, extra={"by": "taker"})

    with pytest.raises(StoreTimeout) as info:  # alive and renewing: it keeps the lease
        await store.refresh("flight", harvest, timeout=2 * LEASE)
    assert info.value.holder_pid == holder.pid and f":{holder.pid}" in str(info.value) and not harvests
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    killed = time.monotonic()
    record = await store.refresh("flight", harvest, timeout=10)
    assert record.extra == {"by": "taker"} and harvests == [1]
    assert time.monotonic() - killed < LEASE + 2.0
    assert (await store.get("flight")).extra == {"by": "taker"}
    await store.aclose()


async def test_a_stale_holders_late_write_is_refused_by_the_fencing_token(redis_server, workers):
    store = open_store(redis_server.url, lease=LEASE)
    stale(store)
    holder = workers.start("stall", redis_server.url, LEASE)
    await asyncio.to_thread(expect_line, holder, "harvesting")
    holder.send_signal(signal.SIGSTOP)  # a long GC pause, a frozen VM: it stops renewing
    await asyncio.sleep(LEASE * 1.5)

    async def harvest():
        return SessionRecord("flight", expires_at=time.time() + 3600, extra={"by": "taker"})

    taken = await store.refresh("flight", harvest, force=True, timeout=5)
    holder.send_signal(signal.SIGCONT)
    holder.stdin.write("finish\n")
    holder.stdin.flush()
    answer = await asyncio.to_thread(holder.stdout.readline)
    assert answer.startswith("LeaseLost "), answer
    assert int(answer.split()[1]) < int(await store.conn.client().get(store.key("fence", "flight")))
    assert (await store.get("flight")).to_dict() == taken.to_dict()
    assert holder.wait(timeout=10) == 0
    await store.aclose()


async def test_a_write_after_the_lease_was_taken_over_in_process_raises_lease_lost(redis_server):
    store = open_store(redis_server.url, lease=LEASE)
    stale(store)
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow():
        started.set()
        await finish.wait()
        return SessionRecord("flight", expires_at=time.time() + 3600, extra={"by": "slow"})

    task = asyncio.ensure_future(store.refresh("flight", slow, force=True))
    await started.wait()
    await store.conn.client().delete(store.key("lease", "flight"))  # as if its lease ran out

    async def fast():
        return SessionRecord("flight", expires_at=time.time() + 3600, extra={"by": "fast"})

    assert (await store.refresh("flight", fast, force=True, timeout=5)).extra == {"by": "fast"}
    finish.set()
    with pytest.raises(LeaseLost, match="flight/default lost its lease"):
        await task
    assert (await store.get("flight")).extra == {"by": "fast"}
    await store.aclose()


def test_redis_restarted_mid_run_gives_typed_errors_then_recovers_with_no_record_lost(redis_server):
    store = open_store(redis_server.url)
    for site in ("cerebras", "cloudflare"):
        store.put_sync(SessionRecord(site, expires_at=time.time() + 3600, extra={"kept": site}))
    acked: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    async def write_loop():
        def bump(record):
            record = record or SessionRecord("counter", source="import")
            record.extra["n"] = record.extra.get("n", 0) + 1
            return record

        while not stop.is_set():
            try:
                acked.append((await store.update("counter", bump)).extra["n"])
            except Exception as exc:  # noqa: BLE001 - every failure is checked below
                failures.append(exc)
                await asyncio.sleep(0.01)
        await store.aclose()

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 20
        while len(acked) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    writer = threading.Thread(target=asyncio.run, args=(write_loop(),))
    writer.start()
    try:
        wait_for(20)
        redis_server.restart(signal.SIGKILL, down_for=0.5)  # a crash; it comes back on the same port
        restarted = len(acked)
        wait_for(restarted + 20)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert restarted >= 20 and len(acked) >= restarted + 20 and failures  # errors, then it went on
    assert all(isinstance(exc, StoreUnavailable) for exc in failures), {type(e).__name__ for e in failures}
    unknown = sum(exc.outcome_unknown for exc in failures)
    final = store.get_sync("counter").extra["n"]
    assert acked == sorted(acked) and final >= acked[-1]  # nothing acknowledged is lost
    assert final - len(acked) <= unknown  # nothing counted twice, but writes whose reply was lost
    assert [r.extra for r in store.list_sync() if r.site != "counter"] == [{"kept": "cerebras"}, {"kept": "cloudflare"}]


# -- three `harvestkit serve` processes, each as its own host, on one Redis ----------------------------

CHALLENGE_VERDICT = "/cdn-cgi/challenge-platform/h/b/flow/"  # one per challenge a browser passes
FLEET_MODEL = "cloudflare/@cf/meta/llama-3.1-8b-instruct-fast"


def start_gateway(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`harvestkit serve` on a free loopback port, with a home of its own (its browser profiles and
    file cache: another host's); returns it and its base URL."""
    host_env = {**env, "HARVESTKIT_HOME": str(home), "TMPDIR": str(home / "tmp")}
    (home / "tmp").mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-m", "harvestkit.cli", "serve", "--port", "0", "--quiet"],
                            env=host_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    line = proc.stderr.readline()
    match = re.search(r"API at (http://127\.0\.0\.1:\d+)/v1", line)
    if not match:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError(f"harvestkit serve did not start: {line}{proc.stderr.read()}")
    return proc, match.group(1)


def stop_gateways(procs: list[subprocess.Popen]) -> str:
    """Stop them (SIGTERM, then SIGKILL) and reap them; returns what they wrote on stderr."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return "".join(proc.stderr.read() for proc in procs)


async def test_three_gateways_on_one_redis_harvest_once_in_total_on_a_cold_start(redis_server, sandbox, tmp_path):
    need_browser()
    env = {**os.environ, **sandbox.env, "HARVESTKIT_STORE": redis_server.url}
    env.pop("HARVESTKIT_NO_HARVEST", None)
    procs: list[subprocess.Popen] = []
    try:
        bases = []
        for host in ("host-a", "host-b", "host-c"):
            proc, base = start_gateway(tmp_path / host, env)
            procs.append(proc)
            bases.append(base)

        async def chat(base: str, http: aiohttp.ClientSession) -> tuple[int, str]:
            body = {"model": FLEET_MODEL, "messages": [{"role": "user", "content": f"Hello {base}"}]}
            async with http.post(f"{base}/v1/chat/completions", json=body) as answer:
                data = await answer.json()
            return answer.status, data["choices"][0]["message"]["content"] if answer.status == 200 else json.dumps(data)

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            answers = await asyncio.gather(*(chat(base, http) for base in bases))
    finally:
        logs = stop_gateways(procs)
    assert [status for status, _ in answers] == [200, 200, 200], logs
    assert "Traceback" not in logs and PASSWORD not in logs, logs
    assert all(text.startswith("Sandbox reply to: Hello") for _, text in answers), answers
    assert len(sandbox.requests(path=CHALLENGE_VERDICT)) == 1  # one harvest among the three hosts
    record = open_store(redis_server.url).get_sync("cloudflare")
    assert record.source == "harvest" and {c.name for c in record.cookies} >= {"cf_clearance"}
    assert not any((tmp_path / host / "sessions").exists() for host in ("host-a", "host-b", "host-c"))
