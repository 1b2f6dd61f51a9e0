"""The ban model's two rules: a minimum gap and a sliding-minute budget."""

from __future__ import annotations

from wacast.wa_simulator.ban_model import BanModel


def model(*, enabled: bool = True, min_gap: float = 3.0, per_minute: int = 5) -> BanModel:
    return BanModel(enabled=enabled, min_gap=min_gap, max_per_minute=per_minute, ban_seconds=60)


def test_a_send_sooner_than_the_minimum_gap_is_too_fast() -> None:
    ban = model()
    window = ban.window()
    assert ban.judge(window, 0.0) is None
    assert ban.judge(window, 3.0) is None
    assert ban.judge(window, 5.9) == "too_fast"


def test_more_sends_than_the_budget_within_a_minute_is_a_burst() -> None:
    ban = model(min_gap=0.0, per_minute=3)
    window = ban.window()
    assert [ban.judge(window, t) for t in (0.0, 10.0, 20.0)] == [None, None, None]
    assert ban.judge(window, 59.0) == "burst"


def test_the_minute_slides() -> None:
    ban = model(min_gap=0.0, per_minute=3)
    window = ban.window()
    verdicts = [ban.judge(window, t) for t in (0.0, 25.0, 50.0, 61.0, 86.0, 111.0, 122.0)]
    assert verdicts == [None] * 7


def test_forgiving_wipes_the_history_and_a_disabled_model_never_bans() -> None:
    ban = model()
    window = ban.window()
    ban.judge(window, 0.0)
    ban.forgive(window)
    assert ban.judge(window, 0.5) is None
    off = model(enabled=False)
    window = off.window()
    assert [off.judge(window, t * 0.01) for t in range(100)] == [None] * 100
