"""The control API on the proxy's own port, for tests that run the sandbox in another process.

    GET  /__sandbox/state                      knobs, faults and counters
    GET  /__sandbox/log?host=H&path=P          the request log (filtered)
    GET  /__sandbox/tunnels                    TLS connections seen, with their client class
    POST /__sandbox/knobs    {"pace": 0.01}    change knobs
    POST /__sandbox/fault    {"route": "cerebras.chat", "status": 429, ...}   force a failure
    POST /__sandbox/faults/clear               remove every fault
    POST /__sandbox/expire                     every session, key and clearance dies now
    POST /__sandbox/keys     {"key": "csk-...", "lifetime": 60}   accept a fixed API key
    POST /__sandbox/reset                      defaults, no faults, empty logs
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .accounts import Accounts
from .state import Fault, SandboxState


def state_summary(state: SandboxState) -> dict[str, Any]:
    return {
        "knobs": dataclasses.asdict(state.knobs),
        "faults": {route: dataclasses.asdict(f) for route, f in state.faults.items()},
        "requests": len(state.requests),
        "tunnels": len(state.tunnels),
        "refused": list(state.refused),
    }


def handle_control(
    state: SandboxState, accounts: Accounts, method: str, target: str, body: bytes
) -> tuple[int, Any]:
    """Answer one control request: (status, JSON-able payload)."""
    parts = urlsplit(target)
    path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError:
        return 400, {"error": "body is not JSON"}
    if not isinstance(payload, dict):
        return 400, {"error": "body must be a JSON object"}
    try:
        if (method, path) == ("GET", "/__sandbox/state"):
            return 200, state_summary(state)
        if (method, path) == ("GET", "/__sandbox/log"):
            entries = state.find(query.get("host"), query.get("path"))
            return 200, [entry.to_dict() for entry in entries]
        if (method, path) == ("GET", "/__sandbox/tunnels"):
            return 200, [dataclasses.asdict(t) for t in state.tunnels]
        if (method, path) == ("POST", "/__sandbox/knobs"):
            state.knobs.apply(payload)
            return 200, dataclasses.asdict(state.knobs)
        if (method, path) == ("POST", "/__sandbox/fault"):
            route = payload.pop("route", None)
            state.set_fault(str(route), Fault(**payload))
            return 200, state_summary(state)["faults"]
        if (method, path) == ("POST", "/__sandbox/faults/clear"):
            state.faults.clear()
            return 200, {}
        if (method, path) == ("POST", "/__sandbox/expire"):
            state.expire_all()
            return 200, {"expired_before": state.expired_before}
        if (method, path) == ("POST", "/__sandbox/keys"):
            accounts.add_key(str(payload["key"]), float(payload.get("lifetime", 86400)))
            return 200, {}
        if (method, path) == ("POST", "/__sandbox/reset"):
            state.reset()
            return 200, state_summary(state)
    except (TypeError, ValueError, KeyError) as exc:
        return 400, {"error": str(exc)}
    return 404, {"error": f"no control endpoint {method} {path}"}
