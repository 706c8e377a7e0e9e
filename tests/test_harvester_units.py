"""The harvester's pieces that need no browser: certificate pins, the sync runner, the policies."""
from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import trustme
from harvestkit.common.syncrun import run_sync
from harvestkit.harvester import HarvestError, Progress
from harvestkit.harvester.launch import directory_site
from harvestkit.harvester.trust import pem_certificates, spki_pin, spki_pins
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.tls import (
    spki_pin as reference_pin,  # the cryptography library's answer
)


@pytest.mark.parametrize("key_type", [trustme.KeyType.RSA, trustme.KeyType.ECDSA])
def test_der_walk_finds_the_subject_public_key_info(key_type: trustme.KeyType) -> None:
    ca = trustme.CA(key_type=key_type)
    leaf = ca.issue_cert("a.example", "b.example", key_type=key_type)
    bundle = ca.cert_pem.bytes() + leaf.cert_chain_pems[0].bytes()
    assert [spki_pin(der) for der in pem_certificates(bundle)] == [
        reference_pin(ca.cert_pem.bytes()),
        reference_pin(leaf.cert_chain_pems[0].bytes()),
    ]
    with pytest.raises(ValueError):
        spki_pin(pem_certificates(bundle)[0][:40])


async def test_pins_are_the_cas_and_the_leaf_each_host_presents(tmp_path: Path) -> None:
    async with Sandbox() as sandbox:
        pins = await spki_pins(sandbox.ca_bundle, ("inference.cerebras.ai", "nowhere.example"), sandbox.proxy_url)
        # the CA's own pin, then the leaf's (fetched through the proxy, verified against the CA);
        # the host the proxy refuses gets none
        assert set(pins) == set(sandbox.certificates.spki_pins) and len(pins) == 2
        other = trustme.CA()
        (tmp_path / "other.pem").write_bytes(other.cert_pem.bytes())
        # a leaf that does not chain to the bundle is never pinned
        assert await spki_pins(str(tmp_path / "other.pem"), ("inference.cerebras.ai",), sandbox.proxy_url) == (
            reference_pin(other.cert_pem.bytes()),
        )
    assert await spki_pins(None, ("inference.cerebras.ai",), None) == ()
    (tmp_path / "empty.pem").write_text("nothing here\n")
    with pytest.raises(HarvestError, match="holds no PEM certificate"):
        await spki_pins(str(tmp_path / "empty.pem"), (), None)
    with pytest.raises(HarvestError, match="cannot read"):
        await spki_pins(str(tmp_path / "missing.pem"), (), None)


async def test_run_sync_inside_a_running_loop() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def fail() -> None:
        raise HarvestError("no")

    assert run_sync(answer) == 42
    with pytest.raises(HarvestError, match="no"):
        run_sync(fail)


def test_ctrl_c_while_a_sync_call_runs_in_its_thread_cancels_it() -> None:
    cleaned = threading.Event()

    async def harvest_like() -> None:
        try:
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C
            await asyncio.sleep(30)
        finally:
            cleaned.set()  # where a harvest stops its browser

    async def caller() -> None:
        run_sync(harvest_like)  # inside a running loop: in a thread of its own

    loop = asyncio.new_event_loop()
    try:
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(caller())
    finally:
        loop.close()
    assert cleaned.is_set() and time.monotonic() - started < 5


def test_harvest_many_uses_the_profile_that_keeps_a_sign_in() -> None:
    assert directory_site(["cloudflare", "cerebras"]) == "cerebras"
    assert directory_site(["cloudflare"]) == "cloudflare"


def test_progress_reads_well() -> None:
    assert str(Progress("saved", 1.23456, "cerebras")) == "[ 1.235 s] cerebras saved"
    assert str(Progress("browser-started", 0.5, "cloudflare", "pid 7")).endswith("browser-started: pid 7")
