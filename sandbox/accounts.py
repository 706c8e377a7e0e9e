"""The sandbox's Cerebras accounts: the one demo user, its Auth.js sessions and demo API keys."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from .state import SandboxState

SANDBOX_EMAIL = "demo@sandbox.harvestkit.test"
SANDBOX_PASSWORD = "harvest-me-locally"
SANDBOX_USER = {"name": "Sandbox Demo", "email": SANDBOX_EMAIL, "image": None}


@dataclass
class Credential:
    """A session token or API key, when it was issued and until when it works."""

    value: str
    email: str
    issued_at: float
    expires_at: float


class Accounts:
    """Sessions (by token) and demo keys (by key) for the fixed sandbox user."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._secret = secrets.token_bytes(32)
        self.sessions: dict[str, Credential] = {}
        self.keys: dict[str, Credential] = {}
        self.current_key: dict[str, str] = {}

    def _alive(self, credential: Credential | None) -> bool:
        now = time.time()
        return (
            credential is not None
            and credential.expires_at > now
            and credential.issued_at >= self.state.expired_before
        )

    # -- sign-in ----------------------------------------------------------------------------
    @staticmethod
    def check_password(email: str, password: str) -> bool:
        return hmac.compare_digest(email.strip().lower(), SANDBOX_EMAIL) and hmac.compare_digest(
            password, SANDBOX_PASSWORD
        )

    def csrf_cookie(self) -> tuple[str, str]:
        """A new Auth.js double-submit pair: (token for the form, value for the cookie)."""
        token = secrets.token_hex(32)
        return token, f"{token}|{self._csrf_hash(token)}"

    def csrf_valid(self, cookie_value: str | None, form_token: str | None) -> bool:
        if not cookie_value or not form_token or "|" not in cookie_value:
            return False
        token, digest = cookie_value.split("|", 1)
        return hmac.compare_digest(token, form_token) and hmac.compare_digest(
            digest, self._csrf_hash(token)
        )

    def _csrf_hash(self, token: str) -> str:
        return hashlib.sha256(token.encode() + self._secret).hexdigest()

    # -- sessions ---------------------------------------------------------------------------
    def new_session(self, email: str) -> Credential:
        now = time.time()
        token = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0.." + secrets.token_urlsafe(96)
        credential = Credential(token, email, now, now + self.state.knobs.session_lifetime)
        self.sessions[token] = credential
        return credential

    def session(self, token: str | None) -> Credential | None:
        credential = self.sessions.get(token or "")
        return credential if self._alive(credential) else None

    def touch(self, credential: Credential) -> Credential:
        """Auth.js re-sets the session on every call: a later expiry, a new value if rotating."""
        now = time.time()
        if self.state.knobs.rotate_cookies:
            self.sessions.pop(credential.value, None)
            return self.new_session(credential.email)
        credential.expires_at = now + self.state.knobs.session_lifetime
        return credential

    def end_session(self, token: str | None) -> None:
        self.sessions.pop(token or "", None)

    # -- demo API keys ------------------------------------------------------------------------
    def demo_key(self, email: str) -> Credential:
        """The user's current demo key; a new one once the old one has expired."""
        credential = self.keys.get(self.current_key.get(email, ""))
        if not self._alive(credential):
            now = time.time()
            value = "csk-" + secrets.token_hex(24)
            credential = Credential(value, email, now, now + self.state.knobs.demo_key_lifetime)
            self.keys[value] = credential
            self.current_key[email] = value
        assert credential is not None
        return credential

    def key_valid(self, key: str) -> bool:
        return self._alive(self.keys.get(key))

    def add_key(self, key: str, lifetime: float = 86400.0) -> None:
        """Accept a fixed API key (a test's stand-in for a user's own key)."""
        now = time.time()
        self.keys[key] = Credential(key, SANDBOX_EMAIL, now, now + lifetime)
