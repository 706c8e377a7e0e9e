"""`harvestkit sandbox` and `harvestkit demo` as a user runs them, in subprocesses."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from curl_cffi import requests

ROOT = Path(__file__).resolve().parent.parent
HARVESTKIT = [sys.executable, "-m", "harvestkit.cli"]


@pytest.fixture
def sandbox_process() -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    process = subprocess.Popen(
        [*HARVESTKIT, "sandbox", "--generation", "data-stream"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        exports: dict[str, str] = {}
        while len(exports) < 2:
            line = process.stdout.readline()
            assert line, f"sandbox exited early: {process.stderr.read()}"
            match = re.fullmatch(r"export (\w+)=(.*)\n", line)
            if match:
                exports[match.group(1)] = match.group(2)
        yield process, exports
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()


def test_sandbox_command_prints_exports_and_serves(sandbox_process) -> None:
    process, env = sandbox_process
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", env["HARVESTKIT_PROXY"])
    assert Path(env["HARVESTKIT_CA_BUNDLE"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    answer = requests.get(
        "https://inference.cerebras.ai/api/auth/session",
        proxy=env["HARVESTKIT_PROXY"], verify=env["HARVESTKIT_CA_BUNDLE"], impersonate="chrome", timeout=10,
    )
    assert answer.text == "null"
    state = requests.get(env["HARVESTKIT_PROXY"] + "/__sandbox/state", timeout=10).json()
    assert state["knobs"]["generation"] == "data-stream"
    with pytest.raises(requests.RequestsError):
        requests.get("https://example.com/", proxy=env["HARVESTKIT_PROXY"], timeout=10)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0
    assert "refused CONNECT example.com:443" in process.stderr.read()
    assert not Path(env["HARVESTKIT_CA_BUNDLE"]).exists()  # its temporary files are gone


def test_sandbox_command_rejects_bad_arguments() -> None:
    result = subprocess.run([*HARVESTKIT, "sandbox", "--generation", "v9"], check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "generation must be one of" in result.stderr
    assert subprocess.run([*HARVESTKIT], check=False, capture_output=True, timeout=30).returncode == 2


def test_demo_runs_end_to_end_without_showing_secrets(tmp_path: Path) -> None:
    env = {**os.environ, "HARVESTKIT_HOME": str(tmp_path / "mine")}
    result = subprocess.run([*HARVESTKIT, "demo"], check=False, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "signed in to the Cerebras demo in Chromium" in out
    for step in ("browser-started", "challenge-passed", "key-captured", "browser-stopped", "saved"):
        assert step in out
    assert "cerebras answers: Sandbox reply to: Hello from harvestkit to cerebras." in out
    assert "cloudflare answers: Sandbox reply to: Hello from harvestkit to cloudflare." in out
    assert "finish stop" in out and "total" in out
    assert not re.search(r"csk-[0-9a-f]{12,}", out + result.stderr)  # the key only redacted
    assert not (tmp_path / "mine").exists()  # the user's own home is never touched


def test_wheel_installs_the_folders_as_harvestkit_subpackages(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("harvestkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("cli/__init__.py", "cache/errors.py", "client/__init__.py", "client/parsers/openai.py", "common/syncrun.py",
                   "gateway/__init__.py", "harvester/browser.py", "sandbox/server.py"):
        assert f"harvestkit/{module}" in names
    assert not any(n.startswith(("tests/", "harvestkit/tests", "cli/", "sandbox/")) for n in names)
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    probe = subprocess.run(
        [sys.executable, "-c", "import harvestkit.cache.errors as e, harvestkit.harvester.errors as h; print(e.__file__); print(h.__file__)"],
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")}, check=False, capture_output=True, text=True, timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert all(line.startswith(str(tmp_path / "site")) for line in probe.stdout.splitlines())


def test_sandbox_process_removes_the_ca_directory_of_a_killed_sandbox() -> None:
    from harvestkit.sandbox.process import SandboxProcess

    sandbox = SandboxProcess().start()
    ca_dir = Path(sandbox.env["HARVESTKIT_CA_BUNDLE"]).parent
    assert ca_dir.is_dir()
    os.killpg(sandbox._process.pid, signal.SIGKILL)  # no chance to clean up after itself
    sandbox.stop()
    assert not ca_dir.exists()
