"""A new anomaly family is one module: its published entry and its injector, passed to the generator, the
tools and the grader as a scratch registry. The global registry, the catalog and the wire types never see it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from metric_tracker_rl.analysis_tools import TOOL_REGISTRY, ToolSpec, run_tool
from metric_tracker_rl.analysis_tools.arguments import FamilyThreshold
from metric_tracker_rl.analysis_tools.generators import candidate_row
from metric_tracker_rl.analysis_tools.registry import page, strongest_first
from metric_tracker_rl.catalog.families import FamilyCatalog, FamilyDescription
from metric_tracker_rl.catalog.published import ANOMALY_TYPES, COUNT_COLUMNS, FUNNEL_STEPS, row_key
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.generation.anomalies import (
    FAMILY_REGISTRY,
    AnomalyFamily,
    FamilyRegistry,
    InjectionRecord,
    register_family,
)
from metric_tracker_rl.generation.anomalies.base import counts_from, full_day, rates_touching
from metric_tracker_rl.grading.grader import grade_submission
from metric_tracker_rl.models import MetricSubmissionRow, submission_row_type
from metric_tracker_rl.world.funnel import FunnelPlan
from metric_tracker_rl.world.public_episode import PublicEpisode

TOY = "checkout_order_slump"
TOY_GENERATOR = "get_checkout_order_slump_rows"
ORDERS = "orders_placed"
ORDER_STEP = FUNNEL_STEPS.index("product_added_to_cart_to_order_placed")
TOY_PUBLIC = FamilyDescription(
    TOY,
    "event_count",
    "Fewer carts become orders all day; the order count falls.",
    TOY_GENERATOR,
    ("compare_count_to_median",),
)


class CheckoutOrderSlump(AnomalyFamily):
    """Checkout converts worse all day; the family is reported on the order count it empties."""

    public = TOY_PUBLIC
    entity_names = (ORDERS,)
    magnitude_meaning = "relative fall of the cart-to-order conversion"
    magnitude_ranges = {"easy": (0.5, 0.7), "medium": (0.4, 0.5), "hard": (0.3, 0.4)}

    def inject(
        self, plan: FunnelPlan, day: int, entity_name: str, magnitude: float, rng: np.random.Generator, difficulty: str
    ) -> InjectionRecord:
        plan.step_rates[day, :, ORDER_STEP] *= 1.0 - magnitude
        neutral = (
            rates_touching(ORDERS)
            | counts_from(COUNT_COLUMNS.index(ORDERS) + 1)
            | {("funnel_step", FUNNEL_STEPS[ORDER_STEP])}
        )
        return InjectionRecord(
            family=self.name,
            day=day,
            entity_type=self.entity_type,
            entity_name=entity_name,
            magnitude=magnitude,
            hours=full_day(),
            description=f"orders fall by {magnitude:.0%}",
            neutral=frozenset(neutral),
        )


def toy_generator(episode: PublicEpisode, args: FamilyThreshold) -> dict[str, Any]:
    """The toy family's generator tool: order counts whose robust z is below -threshold, typed as the toy."""
    panel = episode.panel
    z = panel.filled_z[panel.index("event_count", ORDERS)]
    days = np.nonzero(z < -args.threshold_multiplier)[0].tolist()
    rows = [candidate_row(episode, "event_count", ORDERS, day, TOY, TOY_GENERATOR) for day in days]
    return page(strongest_first(rows), args.offset, args.limit)


def scratch_registry() -> tuple[FamilyCatalog, FamilyRegistry]:
    catalog = FamilyCatalog((TOY_PUBLIC,))
    registry = FamilyRegistry(catalog)
    register_family(CheckoutOrderSlump(), registry)
    return catalog, registry


TOOLS = {
    **TOOL_REGISTRY,
    TOY_GENERATOR: ToolSpec(
        TOY_GENERATOR,
        "Candidate checkout slumps.",
        FamilyThreshold,
        toy_generator,
        "generator",
        {"threshold_multiplier": 3.0},
    ),
}


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10**6), count=st.integers(1, 3))
def test_a_toy_family_is_generated_detected_and_graded(seed: int, count: int) -> None:
    catalog, registry = scratch_registry()
    config = resolve_episode_config(seed=seed, difficulty="easy", anomaly_count=count)
    episode = build_episode(config, registry)
    expected = episode.truth.expected_rows
    assert len(expected) == count and {row.anomaly_type for row in expected} == {TOY}
    assert {row.detection_method for row in expected} == {TOY_GENERATOR}
    assert all(type(row) is submission_row_type((TOY,)) for row in expected)

    outcome = run_tool(TOY_GENERATOR, episode.public, {"threshold_multiplier": 3.0, "limit": 120}, TOOLS)
    assert outcome.ok, outcome.error
    found = {row_key(r["date"], r["entity_type"], r["entity_name"]): r for r in outcome.result["rows"]}
    assert episode.truth.expected_keys <= set(found)

    row_type = submission_row_type(catalog.names)
    report = [row_type.model_validate(found[key]) for key in episode.truth.expected_keys]
    grade = grade_submission(report, expected, episode.truth.neutral_keys, episode.public.dates, families=catalog)
    assert grade.score == 1.0, grade.breakdown
    # A method the toy's entry does not accept loses the method credit: the grader reads the catalog it is given.
    assert (
        grade_submission(
            [r.model_copy(update={"detection_method": "show_raw_data"}) for r in report],
            expected,
            episode.truth.neutral_keys,
            episode.public.dates,
            families=catalog,
        ).score
        < 1.0
    )


def test_the_toy_family_stays_out_of_the_published_ones() -> None:
    scratch_registry()
    assert TOY not in FAMILY_REGISTRY and TOY not in ANOMALY_TYPES and TOY_GENERATOR not in TOOL_REGISTRY
    with pytest.raises(ValueError, match="not a published anomaly type"):
        register_family(CheckoutOrderSlump())
    with pytest.raises(ValidationError):
        MetricSubmissionRow(
            date="2026-03-02",
            entity_type="event_count",
            entity_name=ORDERS,
            anomaly_type=TOY,
            detection_method=TOY_GENERATOR,
            baseline_value=1.0,
            observed_value=0.5,
            delta_value=-0.5,
            severity="high",
        )
    assert submission_row_type(ANOMALY_TYPES) is MetricSubmissionRow


def test_a_registry_refuses_a_family_its_catalog_does_not_publish() -> None:
    _, registry = scratch_registry()
    with pytest.raises(ValueError, match="already registered"):
        register_family(CheckoutOrderSlump(), registry)
    with pytest.raises(ValueError, match="not a published anomaly type"):
        register_family(FAMILY_REGISTRY["funnel_break"], registry)
    assert list(registry) == [TOY]
