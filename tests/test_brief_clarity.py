"""Four passages players found unclear, each held to what the generator and the grader do:

- a data defect's baseline undoes the defect only: the consent denials and late events that happen without any
  defect stay left out of it, as on every date;
- `concurrency` is a count of second incidents within the episode's incident count, not a switch;
- at the warehouse every incident's baseline is the plain rule, an incident of several dates too (none has a
  change point to read "before it began" from);
- funnel_break's definition names what each tier draws for it: payments with segments, any step on one funnel.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pytest
from core_helpers import PUBLISHING_MECHANISMS, reset_world

from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES
from metric_tracker_rl.catalog.published import CONFIG_MEANINGS, FUNNEL_STEPS
from metric_tracker_rl.catalog.seeding import derive_rng
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS, WAREHOUSE
from metric_tracker_rl.generation.anomalies import FAMILY_REGISTRY
from metric_tracker_rl.generation.anomalies.base import ChangePointRecord
from metric_tracker_rl.generation.defects.mechanisms.consent_drop import consent_drop
from metric_tracker_rl.generation.defects.mechanisms.late_load import late_load
from metric_tracker_rl.generation.kinds import INCIDENT_KIND_REGISTRY
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld, build_warehouse_world
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.metrics_layer import dashboard, segment_metric
from metric_tracker_rl.world.warehouse_brief import DEFECT_REPORTING, INCIDENT_REPORTING

PAYMENT_STEP = "order_placed_to_payment_successful"


@cache
def warehouse_world(seed: int) -> WarehouseWorld:
    return build_warehouse_world(WAREHOUSE, resolve_episode_config(seed=seed, difficulty="warehouse"))


def without_consent_denials(log: EventLog) -> EventLog:
    sessions = log.sessions
    return replace(log, sessions=replace(sessions, consent_denied=np.zeros_like(sessions.consent_denied)))


def ingested_on_time(log: EventLog) -> EventLog:
    return replace(log, events=replace(log.events, ingested_us=log.events.timestamp_us))


@pytest.mark.parametrize(
    ("defect", "undo_standing"), [(consent_drop, without_consent_denials), (late_load, ingested_on_time)]
)
def test_a_defects_baseline_keeps_out_the_denials_and_late_events_that_happen_without_it(defect, undo_standing) -> None:
    """The baseline the grader holds (the metrics layer over the log before the defect) is below what the same
    date gives with no session denied or no event late at all: the standing ones stay out, as the text says."""
    assert (
        "only what the defect changed is undone, so a session denied consent or an event ingested after the "
        "cut-off that would have been so without it stays left out, as on every date"
    ) in DEFECT_REPORTING
    before = warehouse_world(2).log
    key = resolve_episode_config(seed=2, difficulty="warehouse").key
    standing = 0
    for stream in range(6):
        edited, record = defect(before, derive_rng(key, "clarity", stream))
        clean, recorded, untouched = dashboard(before), dashboard(edited), dashboard(undo_standing(before))
        for day in record.days:
            baseline = segment_metric(clean, record.segment, record.metric, day)
            assert segment_metric(recorded, record.segment, record.metric, day) < baseline  # the defect's own
            everything = segment_metric(untouched, record.segment, record.metric, day)
            assert everything >= baseline
            standing += everything > baseline  # where some would be denied or late anyway: left out
    assert standing


def test_concurrency_is_a_count_of_second_incidents_within_the_incident_count() -> None:
    meaning = CONFIG_MEANINGS["concurrency"]
    assert meaning.startswith("a count, not a switch: how many incidents (of the incident count")
    for concurrency in (0, 1, 2, 3):
        for seed in range(3):
            drawn = reset_world(difficulty="deep", seed=seed, anomaly_count=5, concurrency=concurrency)
            runs: dict[tuple[int, str, str], list[int]] = {}
            for incident in drawn.incidents:
                record = incident.record
                first = record.day if record.continues is None else record.continues
                runs.setdefault((first, record.entity_name, incident.kind), []).append(record.day)
            held = [day for days in runs.values() for day in days]
            seconds = [
                key
                for key, days in runs.items()
                if key[2] == "level_shift" and len(days) == 1 and held.count(days[0]) > 1
            ]
            assert len(runs) == 5, (concurrency, seed)  # within the incident count, not added to it
            assert len(seconds) >= concurrency, (concurrency, seed)


def test_no_warehouse_incident_reads_its_baseline_from_before_it_began() -> None:
    """Every warehouse incident's row is graded by the plain rule (its date's weekday in the other weeks): no kind
    it draws has a change point, and incidents of several dates are among them."""
    assert "a persistent incident" not in INCIDENT_REPORTING
    assert (
        "an incident of several dates too: each date's row against that date's weekday in the other weeks"
        in INCIDENT_REPORTING
    )
    several = 0
    for seed in (2, 5):
        world = warehouse_world(seed)
        assert not any(isinstance(i.record, ChangePointRecord) for i in world.incidents)
        several += sum(i.record.continues is not None for i in world.incidents)
    assert several  # a level_shift's or an experiment_breakage's later dates


def test_funnel_breaks_definition_names_what_each_tier_draws() -> None:
    """With segments every kind reported as funnel_break breaks the payment step; on one funnel the family's
    injector breaks any step: the definition says both, and no longer offers a broken button with segments."""
    definition = PUBLISHED_FAMILIES["funnel_break"].definition
    assert "with segments the payment step" in definition and "on one funnel any step" in definition
    for difficulty in PUBLISHING_MECHANISMS:
        kinds = [INCIDENT_KIND_REGISTRY[k] for k in TIERS[difficulty].incident_kinds]
        breaks = [kind for kind in kinds if kind.family == "funnel_break"]
        assert breaks and all(tuple(kind.entity_names) == (PAYMENT_STEP,) for kind in breaks), difficulty
    assert tuple(FAMILY_REGISTRY["funnel_break"].entity_names) == FUNNEL_STEPS
