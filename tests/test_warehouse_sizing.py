"""Incidents at the warehouse are drawn for its sample: where no cuboid a kind draws would show the incident, one
that does is raised (the other tiers keep their draws), and a payment failure's block, or a partner's, holds the
orders that show it."""

from __future__ import annotations

import numpy as np
import pytest

from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS, WAREHOUSE
from metric_tracker_rl.generation.kinds.cuboid import CuboidRule, draw_cuboid, hour_arrivals
from metric_tracker_rl.generation.kinds.payment_failure import CLEAR_BLOCK_ORDERS, PAYMENT_STEP, PaymentFailure
from metric_tracker_rl.generation.segmented import place_world
from metric_tracker_rl.world.segments import Segment

US = Segment(country="US")


def _world(difficulty: str, seed: int = 1):  # type: ignore[no-untyped-def]
    return place_world(TIERS[difficulty], resolve_episode_config(seed=seed, difficulty=difficulty)).world


def test_only_the_raw_event_tiers_raise_what_their_data_would_not_show() -> None:
    assert (
        [tier.name for tier in TIERS.values() if tier.segmented is not None and tier.segmented.raise_unclear]
        == [tier.name for tier in TIERS.values() if tier.data == "events"]
        == ["warehouse", "audit"]
    )


@pytest.mark.parametrize(("us_z", "max_boost", "boost"), [(10.0, 1.5, 1.0), (3.0, 2.0, 2.0), (5.0, 2.0, 1.5)])
def test_an_unclear_incident_is_raised_in_a_cuboid_that_shows_it(us_z: float, max_boost: float, boost: float) -> None:
    """Only the US would show the incident (its z at the drawn change `us_z`, every other cuboid's 1): the
    warehouse draws it, raised to the floor (7.5) as far as `max_boost` allows; deep keeps its change."""

    def clear(segment: Segment) -> float:
        return us_z if segment == US else 1.0

    world = _world("warehouse")
    segment, raised = draw_cuboid(
        world, np.random.default_rng(0), CuboidRule(), [10], world.plan.leaf_reach([10]), clear, max_boost=max_boost
    )
    assert segment == US and raised == pytest.approx(boost)
    deep = _world("deep")
    _, kept = draw_cuboid(
        deep,
        np.random.default_rng(0),
        CuboidRule(),
        [10],
        deep.plan.leaf_reach([10]),
        lambda s: 1.0,
        max_boost=max_boost,
    )
    assert kept == 1.0


def test_a_payment_failure_holds_the_orders_that_show_it() -> None:
    longest = PaymentFailure.magnitude_range[1]
    seen = 0
    for seed in range(1, 9):
        placed = place_world(WAREHOUSE, resolve_episode_config(seed=seed, difficulty="warehouse"))
        for incident in placed.incidents:
            if incident.kind == "payment_failure":
                start, end = incident.record.hours
                orders = hour_arrivals(placed.world, incident.segment, incident.record.day, PAYMENT_STEP)
                assert orders[start:end].sum() >= CLEAR_BLOCK_ORDERS or end - start >= longest, seed
                seen += 1
    assert seen >= 3


def test_a_partner_payment_failure_is_placed_in_the_sample_with_the_orders_that_show_it() -> None:
    """No hour of a partner's segment reads alone in the warehouse's sample: the kind still places its incident, on
    a partner's segment whose block, grown, holds the orders that show it (at every other tier it keeps its
    draw)."""
    seen = 0
    for seed in range(1, 13):
        config = resolve_episode_config(
            seed=seed,
            difficulty="warehouse",
            incident_kinds=["partner_payment_failure"],
            anomaly_count=2,
            decoy_ratio=0,
        )
        placed = place_world(WAREHOUSE, config)
        for incident in placed.incidents:  # where no partner's block can show, an outage stands in
            if incident.kind != "partner_payment_failure":
                continue
            assert incident.segment.country is not None and incident.segment.app_version is None
            start, end = incident.record.hours
            orders = hour_arrivals(placed.world, incident.segment, incident.record.day, PAYMENT_STEP)
            assert orders[start:end].sum() >= CLEAR_BLOCK_ORDERS, seed
            seen += 1
    assert seen >= 2
