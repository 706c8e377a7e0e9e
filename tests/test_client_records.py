"""What crosses packages in a session record: typed fields, and records of older versions."""

from __future__ import annotations

import time

from harvestkit.cache import Cookie, SessionRecord


def old_record_dict() -> dict:
    """A record as version 0.1 wrote it: essential cookies and generation under ``extra``."""
    now = time.time()
    return {
        "schema_version": 1, "site": "cloudflare", "profile": "default", "harvested_at": now,
        "expires_at": now + 600, "user_agent": "Mozilla/5.0 Chrome/136", "client_hints": {},
        "impersonate": None, "cookies": [Cookie("cf_clearance", "v", ".ai.cloudflare.com", expires=now + 600).to_dict()],
        "api_key": None, "api_key_expires_at": None, "proxy": None, "source": "harvest",
        "extra": {"essential_cookies": ["cf_clearance"], "generation": "agents", "browser": "136.0"},
    }  # fmt: skip


def test_an_old_record_reads_into_the_typed_fields_and_is_written_back_without_extra_keys() -> None:
    record = SessionRecord.from_dict(old_record_dict())
    assert record.essential_cookies == ["cf_clearance"] and record.generation == "agents"
    assert record.extra == {"browser": "136.0"}
    written = record.to_dict()
    assert written["essential_cookies"] == ["cf_clearance"] and written["generation"] == "agents"
    assert "impersonate" not in written and written["extra"] == {"browser": "136.0"}
    assert SessionRecord.from_dict(written) == record


def test_the_essential_cookies_decide_the_expiry_after_a_merge() -> None:
    record = SessionRecord.from_dict(old_record_dict())
    later = time.time() + 3600
    merged = record.merge_cookies([Cookie("cf_clearance", "w", ".ai.cloudflare.com", expires=later)],
                                  essential=record.essential_cookies)  # fmt: skip
    assert merged.expires_at == later


def test_a_record_without_the_new_fields_has_their_defaults() -> None:
    data = old_record_dict()
    data["extra"] = {}
    record = SessionRecord.from_dict(data)
    assert record.essential_cookies == [] and record.generation is None
