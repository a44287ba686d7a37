"""The audit expert's reading of rows that coincide with a context item or move against their family: a release's fall
that an experiment's arm holding its version shows further is the arm's, one the arm shows less stays the
release's; and an incident row whose value moved against its family (a drop that rose) is no finding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from metric_tracker_rl.agents.audit_coinciding import arms_over_versions, its_way
from metric_tracker_rl.agents.warehouse_findings import COUNT_DROP, FUNNEL_BREAK, RATE_DROP, Finding
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

DATES = window_calendar(56).iso_dates
CART = RATE_COLUMNS[2]
VERSION = Segment(platform="ios", app_version="6.24.0")
IOS = Segment(platform="ios")


def _release(z: float) -> list[Finding]:
    return [Finding(DATES[d], CART, RATE_DROP, VERSION, kind="release_regression", z=z) for d in (10, 11, 12)]


def _arm(z: float, segment: Segment = IOS, metric: str = CART) -> list[Finding]:
    return [Finding(DATES[d], metric, RATE_DROP, segment, kind="experiment_breakage", z=z) for d in (11, 12, 13)]


def test_a_release_whose_fall_its_arm_shows_further_is_the_arms() -> None:
    """The arm's fall standing out further than the version's on a date of the release: the release's rows go, the
    arm's stay; the version's standing out further, both stay (the dedupe that follows keeps the release, first)."""
    arm = _arm(-12.0)
    assert arms_over_versions([*_release(-6.0), *arm]) == arm
    assert arms_over_versions([*_release(-6.0), *_arm(-4.0)]) == [*_release(-6.0), *_arm(-4.0)]


def test_an_arm_elsewhere_leaves_a_release_alone() -> None:
    """An arm on another platform, on another step, or on dates the release does not hold takes no row of it."""
    release = _release(-6.0)
    for arm in (
        _arm(-12.0, Segment(platform="android")),
        _arm(-12.0, metric=RATE_COLUMNS[3]),
        [Finding(DATES[d], CART, RATE_DROP, IOS, kind="experiment_breakage", z=-12.0) for d in (20, 21)],
    ):
        assert arms_over_versions([*release, *arm])[: len(release)] == release


@given(
    st.sampled_from((RATE_DROP, COUNT_DROP, FUNNEL_BREAK, "rate_spike_from_median", "absolute_spike_in_event_count")),
    st.floats(0.01, 1000.0),
    st.floats(0.0, 1000.0),
)
def test_a_row_stays_only_where_it_moved_its_familys_way(family: str, baseline: float, observed: float) -> None:
    """A drop or a break stays where its value fell below its baseline, a spike where it rose above it."""
    row = Finding(DATES[5], CART, family, Segment(country="US"), baseline=baseline, observed=observed)
    assert its_way(row) == (observed > baseline if "spike" in family else observed < baseline)
