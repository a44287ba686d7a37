"""A reference agent's report row carries values the grader's tolerance accepts: four decimals in general, and
exact beside a baseline of zero (the delta's tolerance is a share of the baseline, so a rounded delta of a zero
baseline would miss it however close)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from metric_tracker_rl.agents.warehouse_findings import Finding, report_row
from metric_tracker_rl.catalog.published import RELATIVE_TOLERANCE
from metric_tracker_rl.grading.grader import within_tolerance
from metric_tracker_rl.world.segments import Segment

DATA_QUALITY = "data_quality"


@given(
    baseline=st.one_of(st.just(0.0), st.floats(0.5, 1e5)),
    observed=st.one_of(st.just(0.0), st.floats(0.01, 1e5)),  # a count, a rate over fewer than 10,000, a revenue
)
def test_every_value_of_a_row_is_within_the_graders_tolerance(baseline: float, observed: float) -> None:
    finding = Finding("2026-03-02", "revenue_usd", DATA_QUALITY, Segment(platform="ios"), baseline, observed)
    row = report_row(finding)
    delta = observed - baseline
    assert within_tolerance(row.baseline_value, baseline, baseline, relative_tolerance=RELATIVE_TOLERANCE)
    assert within_tolerance(row.observed_value, observed, observed, relative_tolerance=RELATIVE_TOLERANCE)
    assert within_tolerance(row.delta_value, delta, baseline, relative_tolerance=RELATIVE_TOLERANCE)
