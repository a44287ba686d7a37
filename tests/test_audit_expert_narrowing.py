"""The audit expert names a move of one user type there: where a wider segment's finding and the same segment's
one user type's name one date and metric, the narrower one holds the row when the other user type moved far less
(a synthetic case both ways, and an episode whose member sale was reported on its whole country)."""

from __future__ import annotations

import pytest

from lab.calibration.interface import record_episode
from metric_tracker_rl.agents.audit_expert import AuditInvestigation
from metric_tracker_rl.agents.audit_lasting import OTHER_SHARE
from metric_tracker_rl.agents.warehouse_findings import Finding
from metric_tracker_rl.catalog.published import row_key
from metric_tracker_rl.catalog.task_splits import UNTUNED_FIRST_OFFSET
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT
from metric_tracker_rl.catalog.versions import tier_at
from metric_tracker_rl.generation.audit.truth import audit_rows
from metric_tracker_rl.generation.audit.world import audit_mix, build_audit_world
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

# The version whose episodes this module's seeds were chosen on (the rules it tests are the same at version 2).
AUDIT_V1 = tier_at("audit", 1)

CART, RATE_SPIKE = RATE_COLUMNS[1], "rate_spike_from_median"
COUNTRY, RETURNING = Segment(country="US"), Segment(country="US", user_type="returning")
DATES = ["2026-03-10", "2026-03-11"]  # the window the synthetic findings' dates are read in
# An eval episode of the expert's tuning seeds (past the untuned calibration's) whose member sale a wider finding
# named on its whole country.
MEMBER_SALE_SEED = AUDIT.calibration_seed_base + UNTUNED_FIRST_OFFSET + 401


def _narrowed(candidates: list[Finding], one: float, other: float) -> list[Finding]:
    """The expert's choice where each user type's value is read as moving by `one` (the narrower finding's) and
    `other` (the other user type's) of its baseline: one statement reads both."""
    steps = AuditInvestigation(dates=DATES).narrowed_to_a_user_type(candidates)
    name, _ = next(steps)
    assert name == "incident values"
    try:
        steps.send([{"i": 0, "value": 1 + one, "peers": 1.0}, {"i": 1, "value": 1 + other, "peers": 1.0}])
    except StopIteration as stop:
        result: list[Finding] = stop.value
        return result
    raise AssertionError("one statement reads both user types")


def test_a_move_of_one_user_type_is_named_there_and_a_move_of_both_in_the_wider_segment() -> None:
    wide = Finding("2026-03-10", CART, RATE_SPIKE, COUNTRY, kind="promo_surge")
    narrow = Finding("2026-03-10", CART, RATE_SPIKE, RETURNING, kind="member_price_sale")
    assert _narrowed([wide, narrow], 0.8, 0.05) == [narrow, narrow]  # dedupe keeps the first
    assert _narrowed([wide, narrow], 0.8, 0.8 * OTHER_SHARE + 0.01) == [wide, narrow]
    assert _narrowed([wide, narrow], 0.8, -0.3) == [narrow, narrow]  # the other type moved the other way
    elsewhere = Finding("2026-03-11", CART, RATE_SPIKE, RETURNING, kind="member_price_sale")
    steps = AuditInvestigation(dates=DATES).narrowed_to_a_user_type([wide, elsewhere])
    try:
        next(steps)
        raise AssertionError("nothing to read where no finding narrows another")
    except StopIteration as stop:
        assert stop.value == [wide, elsewhere]


@pytest.mark.slow  # an audit episode played, and its world built
def test_a_member_sale_is_reported_on_its_countrys_returning_users() -> None:
    world = build_audit_world(AUDIT_V1, resolve_episode_config(version=1, seed=MEMBER_SALE_SEED, difficulty="audit"))
    dates = window_calendar(world.log.num_days).iso_dates
    sale = [r for r in audit_rows(world, audit_mix(AUDIT)) if r.kind == "member_price_sale"]
    assert sale  # the case
    env = MetricTrackerRlEnvironment()
    try:
        run = record_episode("audit_expert", {"difficulty": "audit", "seed": MEMBER_SALE_SEED, "version": 1}, env)
    finally:
        env.close()
    assert run.graded is not None
    submitted = {row_key(r.date, r.entity_type, r.entity_name): r for r in run.graded.submitted_rows}
    for row in sale:
        expected = row.report_row(dates)
        reported = submitted[row_key(expected.date, expected.entity_type, expected.entity_name)]
        assert (reported.country, reported.user_type) == (expected.country, expected.user_type), expected.date
