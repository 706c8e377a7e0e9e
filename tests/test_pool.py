"""Session pools, the pure part: budgets from rate-limit headers, cooldowns, stickiness, ties,
the proxy binding; and the pool's state shared between two processes' views of one store."""

from __future__ import annotations

import pytest
from harvestkit.cache import AuthCache, SessionRecord, open_store
from harvestkit.client.pool import Budget, Candidate, Limit, Member, bound_to, choose, parse_limits, parse_reset
from harvestkit.client.session_pool import PoolExhausted, SessionPool
from redis_helpers import no_leftover_redis, redis_server  # noqa: F401 - fixtures

NOW = 1_800_000_000.0
A, B, C = Member("a"), Member("b"), Member("c")
CEREBRAS_HEADERS = {
    "x-ratelimit-limit-requests-day": "14400",
    "x-ratelimit-limit-tokens-minute": "60000",
    "x-ratelimit-remaining-requests-day": "14000",
    "x-ratelimit-remaining-tokens-minute": "15000",
    "x-ratelimit-reset-requests-day": "3600.5",
    "x-ratelimit-reset-tokens-minute": "12.25",
}


def budget(tokens_left: float, limit: float = 60000, reset_in: float = 30.0) -> Budget:
    return Budget({"tokens-minute": Limit(tokens_left, limit, NOW + reset_in)}, NOW - 1)


def test_cerebras_headers_become_windows_with_absolute_resets() -> None:
    limits = parse_limits(CEREBRAS_HEADERS, NOW)
    assert limits["tokens-minute"] == Limit(15000, 60000, NOW + 12.25)
    assert limits["requests-day"] == Limit(14000, 14400, NOW + 3600.5)
    assert Budget(limits, NOW).left(NOW) == pytest.approx(0.25)  # the tightest window


def test_openai_style_durations_and_unreadable_values() -> None:
    assert parse_reset("6m0s", NOW) == NOW + 360
    assert parse_reset("1h2m3.5s", NOW) == NOW + 3723.5
    assert parse_reset("250ms", NOW) == pytest.approx(NOW + 0.25)
    assert parse_reset(str(NOW + 5), NOW) == NOW + 5  # already an epoch time
    assert parse_reset("soon", NOW) is None and parse_reset("-3", NOW) is None
    headers = {"X-RateLimit-Remaining-Requests": "nan", "x-ratelimit-remaining-tokens": "10", "x-ratelimit-reset-tokens": "??"}
    assert parse_limits(headers, NOW) == {"tokens": Limit(10, None, None)}
    assert parse_limits({"content-type": "text/event-stream"}, NOW) == {}


def test_a_window_is_whole_again_after_its_reset() -> None:
    spent = budget(0, reset_in=5)
    assert spent.left(NOW) == 0.0 and spent.free_at(NOW) == NOW + 5
    assert spent.left(NOW + 5) == 1.0 and spent.free_at(NOW + 6) == NOW + 6


def test_the_member_with_the_most_budget_left_is_chosen() -> None:
    candidates = [Candidate(A, True, budget(1000)), Candidate(B, True, budget(50000)), Candidate(C, True, budget(20000))]
    assert choose(candidates, NOW)[0].member == B


def test_a_cooling_member_is_skipped_however_much_budget_it_had() -> None:
    cooling = Budget(budget(59000).limits, NOW - 1, cooling_until=NOW + 10, reason="rate limited")
    candidates = [Candidate(A, True, cooling), Candidate(B, True, budget(100))]
    assert choose(candidates, NOW)[0].member == B
    assert choose(candidates, NOW + 11)[0].member == A  # its cooldown is over


def test_a_used_up_window_counts_as_cooling_until_its_reset() -> None:
    candidates = [Candidate(A, True, budget(0, reset_in=8)), Candidate(B, True, budget(0, reset_in=3))]
    assert choose(candidates, NOW) == (None, NOW + 3)  # nobody can serve; B frees up first
    assert choose(candidates, NOW + 4)[0].member == B


def test_budgets_within_a_band_are_a_tie_so_concurrent_requests_spread() -> None:
    close = [Candidate(A, True, budget(57000), last_used=NOW - 1), Candidate(B, True, budget(55000), last_used=NOW - 5)]
    assert choose(close, NOW)[0].member == B  # 95% and 92% left: the one used longest ago
    assert choose(close, NOW, band=0)[0].member == A  # without a band, strictly the most left
    apart = [Candidate(A, True, budget(57000), last_used=NOW - 1), Candidate(B, True, budget(45000), last_used=NOW - 5)]
    assert choose(apart, NOW)[0].member == A  # 95% against 75%


def test_ties_go_to_the_member_used_longest_ago_then_to_pool_order() -> None:
    same = budget(30000)
    assert choose([Candidate(A, True, same, last_used=NOW - 1), Candidate(B, True, same, last_used=NOW - 9)], NOW)[0].member == B
    assert choose([Candidate(A, True, same), Candidate(B, True, same)], NOW)[0].member == A
    assert choose([Candidate(A, True), Candidate(B, True)], NOW)[0].member == A  # nothing known: a full budget


def test_a_fresh_member_wins_over_one_that_needs_a_harvest() -> None:
    assert choose([Candidate(A, False, budget(60000)), Candidate(B, True, budget(10))], NOW)[0].member == B
    assert choose([Candidate(A, False), Candidate(B, False)], NOW)[0].member == A  # the first to harvest


def test_sticky_member_is_kept_while_it_can_serve() -> None:
    candidates = [Candidate(A, True, budget(100)), Candidate(B, True, budget(50000))]
    assert choose(candidates, NOW, sticky=A)[0].member == A  # less budget, but the conversation's
    cooling = [Candidate(A, True, Budget(cooling_until=NOW + 5)), Candidate(B, True)]
    assert choose(cooling, NOW, sticky=A)[0].member == B
    assert choose([Candidate(A, False), Candidate(B, True)], NOW, sticky=A)[0].member == B  # A needs a harvest


def test_excluded_members_are_not_chosen_and_say_when_they_free_up() -> None:
    candidates = [Candidate(A, True, Budget(cooling_until=NOW + 7)), Candidate(B, True)]
    assert choose(candidates, NOW, exclude=[B]) == (None, NOW + 7)
    assert choose([Candidate(A, True)], NOW, exclude=[A]) == (None, None)  # excluded, no cooldown to wait for


def test_merging_two_views_keeps_the_later_observation_and_the_later_cooldown() -> None:
    early = Budget(budget(100).limits, NOW - 5, cooling_until=NOW + 20, reason="rate limited")
    late = Budget(budget(40000).limits, NOW, cooling_until=NOW + 2)
    merged = early.merged(late)
    assert merged.limits == late.limits and merged.cooling_until == NOW + 20 and merged.reason == "rate limited"
    assert Budget.from_dict(merged.to_dict()) == merged
    assert Budget.from_dict({"limits": "garbage"}) == Budget()


def test_a_member_with_a_proxy_uses_only_a_session_harvested_through_it() -> None:
    member = Member("a", "http://user:secret@10.0.0.2:3128")
    assert member.label == "a@10.0.0.2:3128" and "secret" not in repr(member)
    record = SessionRecord("cloudflare", "a", proxy="http://user:rotated@10.0.0.2:3128")
    assert bound_to(record, member)  # same proxy and user; the password may change
    assert not bound_to(SessionRecord("cloudflare", "a", proxy="http://10.0.0.3:3128"), member)
    assert not bound_to(SessionRecord("cloudflare", "a"), member)
    assert bound_to(SessionRecord("cloudflare", "a", proxy="http://10.0.0.3:3128"), Member("a"))
    with pytest.raises(ValueError, match="not a proxy URL"):
        Member("a", "10.0.0.2:3128")
    with pytest.raises(ValueError, match="invalid profile"):
        Member("../etc")


def test_a_pool_needs_distinct_members() -> None:
    with pytest.raises(ValueError, match="no members"):
        SessionPool("cerebras", [])
    with pytest.raises(ValueError, match="profile twice"):
        SessionPool("cerebras", [Member("a"), Member("a", "http://10.0.0.2:1")])


def _records(cache: AuthCache, *profiles: str) -> None:
    for profile in profiles:
        cache.put_sync(SessionRecord("cerebras", profile, api_key=f"csk-{profile}" * 4))


async def test_a_cooldown_one_process_saw_is_seen_by_another_through_the_store(tmp_path) -> None:
    store = AuthCache(tmp_path)
    _records(store, "a", "b")
    here, there = (SessionPool("cerebras", ["a", "b"], share_interval=0) for _ in range(2))
    assert await here.pick(store) == A
    await here.cool_down(store, A, 30.0, {})
    assert await there.pick(store) == B  # the other process never saw the 429 itself
    with pytest.raises(PoolExhausted) as caught:
        await there.pick(store, exclude=[B])
    assert 29 < caught.value.retry_after <= 30 and caught.value.status_code == 429
    assert "first frees up in" in str(caught.value)


async def test_budgets_are_shared_through_the_store(tmp_path) -> None:
    store = AuthCache(tmp_path)
    _records(store, "a", "b")
    here, there = (SessionPool("cerebras", ["a", "b"], share_interval=0) for _ in range(2))
    await here.observe(store, A, {**CEREBRAS_HEADERS, "x-ratelimit-remaining-tokens-minute": "100"})
    await here.observe(store, B, CEREBRAS_HEADERS)
    assert await there.pick(store) == B  # 15000 left against A's 100
    shown = {row.profile: row for row in there.status()}
    assert shown["a"].limits["tokens-minute"] == 100 and shown["a"].fresh and shown["a"].cooling_for == 0


async def test_a_sticky_key_stays_on_its_member_while_it_can_serve(tmp_path) -> None:
    store = AuthCache(tmp_path)
    _records(store, "a", "b")
    pool = SessionPool("cerebras", ["a", "b"], share_interval=0)
    first = await pool.pick(store, key="conversation-1")
    assert [await pool.pick(store, key="conversation-1") for _ in range(3)] == [first] * 3
    other = await pool.pick(store, key="conversation-2")
    assert other != first  # the least recently used member
    await pool.cool_down(store, first, 5.0, {})
    assert await pool.pick(store, key="conversation-1") == other  # moved while it cools
    assert await SessionPool("cerebras", ["a", "b"]).pick(store) == other  # the cooldown is in the store


async def test_a_cooldown_outlives_a_harvest_that_replaced_the_record(tmp_path) -> None:
    store = AuthCache(tmp_path)
    _records(store, "a", "b")
    here = SessionPool("cerebras", ["a", "b"], share_interval=0)
    await here.cool_down(store, A, 20.0, {})
    _records(store, "a")  # a re-harvest (cron's refresh, say) writes a record without the pool's data
    await here.sync(store, force=True)  # the process that saw the 429 shares it again
    assert await SessionPool("cerebras", ["a", "b"]).pick(store) == B  # another process still avoids a


async def test_without_stickiness_a_key_changes_nothing(tmp_path) -> None:
    store = AuthCache(tmp_path)
    _records(store, "a", "b")
    unsticky = SessionPool("cerebras", ["a", "b"], sticky=False, share_interval=0)
    assert [await unsticky.pick(store, key="k") for _ in range(3)] == [A, B, A]  # round robin on a tie


async def test_a_failed_member_comes_back_once_harvested_anew(tmp_path) -> None:
    store = AuthCache(tmp_path)
    _records(store, "a", "b")
    pool = SessionPool("cerebras", ["a", "b"], share_interval=0)
    await pool.failed(store, A, RuntimeError("signed out"))
    assert await pool.pick(store) == B and await pool.pick(store) == B
    assert not pool.rate_limited()
    _records(store, "a")  # a new harvest of a
    assert await pool.pick(store) == A


async def test_through_redis_two_processes_share_cooldowns_and_budgets(redis_server) -> None:
    async with open_store(redis_server.url) as here_store, open_store(redis_server.url) as there_store:
        for profile in ("a", "b"):
            await here_store.put(SessionRecord("cerebras", profile, api_key=f"csk-{profile}" * 4))
        here, there = (SessionPool("cerebras", ["a", "b"], share_interval=0) for _ in range(2))
        await here.observe(here_store, B, {**CEREBRAS_HEADERS, "x-ratelimit-remaining-tokens-minute": "10"})
        assert await there.pick(there_store) == A  # b has less left, as the other process saw
        await here.cool_down(here_store, A, 20.0, {})
        assert await there.pick(there_store) == B
        record = await there_store.get("cerebras", "a")
        assert record.api_key == "csk-a" * 4  # the record itself is untouched
        assert {row.profile: row.reason for row in there.status()} == {"a": "rate limited", "b": ""}
