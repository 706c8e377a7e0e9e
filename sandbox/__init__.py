"""A local replica of inference.cerebras.ai, api.cerebras.ai and playground.ai.cloudflare.com.

Reached through a forward proxy on 127.0.0.1 with a throwaway CA: point harvestkit at it with
HARVESTKIT_PROXY and HARVESTKIT_CA_BUNDLE (`Sandbox.env`). Needs the `sandbox` extra.
"""
from .accounts import SANDBOX_EMAIL, SANDBOX_PASSWORD
from .server import Sandbox
from .state import GENERATIONS, ROUTES, Fault, Knobs, LoggedRequest
from .textgen import Reply, make_reply

__all__ = [
    "GENERATIONS",
    "ROUTES",
    "SANDBOX_EMAIL",
    "SANDBOX_PASSWORD",
    "Fault",
    "Knobs",
    "LoggedRequest",
    "Reply",
    "Sandbox",
    "make_reply",
]
