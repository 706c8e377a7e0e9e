"""What a recording is expected to give when replayed: shared by tests/test_recordings.py and
scripts/recording_to_test.py (which writes the expectations the test then holds it to)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harvestkit.cache import AuthCache
from harvestkit.common.har import load_har
from harvestkit.harvester.sites import SITES
from harvestkit.sandbox import Sandbox


def _harvestkit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harvestkit.cli", *args], env=env, capture_output=True, text=True,
                          timeout=90, check=False)


CHAT_ROUTES = {  # where each site's chat request goes (every generation of Cloudflare)
    "cerebras": ("api.cerebras.ai", ("/v1/chat/completions",)),
    "cloudflare": ("playground.ai.cloudflare.com", ("/agents/", "/api/inference", "/api/chat")),
}


def _user_text(data: Any) -> str | None:
    """The last user message's text anywhere in decoded JSON (JSON inside JSON included)."""
    found = None
    if isinstance(data, str) and data[:1] in "{[":
        try:
            return _user_text(json.loads(data))
        except ValueError:
            return None
    if isinstance(data, dict):
        if data.get("role") == "user":
            content = data.get("content")
            parts = content if isinstance(content, list) else data.get("parts") or []
            text = content if isinstance(content, str) else "".join(p.get("text", "") for p in parts if isinstance(p, dict))
            found = text or None
        for value in data.values():
            found = _user_text(value) or found
    elif isinstance(data, list):
        for item in data:
            found = _user_text(item) or found
    return found


def _prompt(entries: list[Any], site: str) -> str | None:
    host, paths = CHAT_ROUTES[site]
    for entry in entries:
        chat = entry.websocket or (any(entry.path.startswith(p) for p in paths) and 200 <= entry.status < 300)
        if entry.host != host or not chat:
            continue
        for body in (entry.post_data, *(m.data for m in entry.websocket if m.type == "send")):
            text = _user_text(body) if body else None
            if text:
                return text
    return None


def _model(entries: list[Any], site: str) -> str | None:
    """The model id of the site's first recorded chat request with a JSON body naming one (the
    replay asks for it again: the client's default may be a model the recording never listed)."""
    host, paths = CHAT_ROUTES[site]
    for entry in entries:
        if entry.host == host and any(entry.path.startswith(p) for p in paths) and entry.post_data:
            try:
                model = json.loads(entry.post_data).get("model")
            except (ValueError, AttributeError):
                continue
            if isinstance(model, str) and model:
                return model
    return None


def cases_in(har: Path) -> list[dict[str, Any]]:
    """The replayable cases a recording holds: a harvest per site whose start page it has, a
    chat per site whose chat request it has."""
    entries = load_har(har)
    urls = {(e.method, e.url) for e in entries}
    cases: list[dict[str, Any]] = [
        {"kind": "harvest", "site": name} for name, recipe in SITES.items() if ("GET", recipe.start_url) in urls
    ]
    for site in CHAT_ROUTES:
        prompt = _prompt(entries, site)
        if prompt:
            model = _model(entries, site)
            cases.append({"kind": "chat", "site": site, "prompt": prompt, **({"model": model} if model else {})})
    return cases


def replay(har: Path, case: dict[str, Any]) -> dict[str, Any]:
    """Run one case against the recording in the sandbox; what harvestkit made of it."""
    if case["kind"] == "chat":
        return _replay_chat(har, case)
    with tempfile.TemporaryDirectory(prefix="harvestkit-replay-") as home, Sandbox(replay=har) as sandbox:
        env = {**os.environ, **sandbox.env, "HARVESTKIT_HOME": home}
        done = _harvestkit(env, "harvest", case["site"], "--json", "--timeout", "60")
        missing = sorted({r.note for r in sandbox.state.requests if r.status == 404 and r.note})
        record = AuthCache(Path(home) / "sessions").get_sync(case["site"])
        return {
            "exit": done.returncode,
            "error": done.stderr.strip().splitlines()[-1] if done.returncode and done.stderr.strip() else None,
            "cookies": sorted({c.name for c in record.cookies}) if record else [],
            "user_agent": bool(record and record.user_agent),  # the live browser's, not the recording's
            "api_key": bool(record and record.api_key),
            "unrecorded": missing,
        }


def _replay_chat(har: Path, case: dict[str, Any]) -> dict[str, Any]:
    """The session imported from the recording itself, then the recorded prompt asked again."""
    with tempfile.TemporaryDirectory(prefix="harvestkit-replay-") as home, Sandbox(replay=har) as sandbox:
        env = {**os.environ, **sandbox.env, "HARVESTKIT_HOME": home, "HARVESTKIT_NO_HARVEST": "1"}
        imported = _harvestkit(env, "cache", "import", case["site"], str(har), "--format", "har")
        model = ("-m", case["model"]) if case.get("model") else ()
        done = _harvestkit(env, "chat", "-p", case["site"], *model, case["prompt"]) if imported.returncode == 0 else imported
        missing = sorted({r.note for r in sandbox.state.requests if r.status == 404 and r.note})
        return {
            "exit": done.returncode,
            "error": done.stderr.strip().splitlines()[-1] if done.returncode and done.stderr.strip() else None,
            "text": done.stdout,
            "unrecorded": missing,
        }


def expectations_for(har: Path) -> dict[str, Any]:
    """Every case of the recording with its outcome today."""
    cases = []
    for case in cases_in(har):
        outcome = replay(har, case)
        cases.append({**case, "expect": {k: v for k, v in outcome.items() if k != "unrecorded"}})
    return {"recording": har.name, "cases": cases}


def load_expectations(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
