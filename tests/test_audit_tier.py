"""The audit tier: its brief publishes the rules of a finding and names no mechanism (no kind, no defect, none of
their descriptions); its settings neither take nor show what names or sizes one; an episode's split decides what
it may hold (a train episode never holds a held-out mechanism, an eval episode always holds one); and its truth is
the published rule's (every defect row is its date's most moved metric past the margin, with the dashboard's
values; every incident row departs from its baseline past the margin)."""

from __future__ import annotations

import inspect
import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import metric_tracker_rl.agents.audit_expert as audit_expert
import metric_tracker_rl.generation.audit.truth as audit_truth
from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.catalog.task_splits import TRAIN_SEED_BASE, calibration_reset_kwargs, mechanism_split, task_range
from metric_tracker_rl.catalog.tasks import DIAL_KNOBS, resolve_episode_config
from metric_tracker_rl.catalog.tiers import ABYSS_KINDS as AUDIT_WAREHOUSE_KINDS
from metric_tracker_rl.catalog.tiers import AUDIT, WAREHOUSE_DEFECTS, AuditMix
from metric_tracker_rl.generation.audit.truth import AUDIT_METRICS, audit_rows
from metric_tracker_rl.generation.audit.world import audit_mix, build_audit_world
from metric_tracker_rl.generation.defects import DEFECT_REGISTRY, defect_edits
from metric_tracker_rl.generation.episode import daily_series
from metric_tracker_rl.generation.kinds import INCIDENT_KIND_REGISTRY
from metric_tracker_rl.generation.warehouse.truth import DATA_QUALITY
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.prompt import first_prompt, system_prompt
from metric_tracker_rl.world.audit_brief import (
    FINDINGS_RULE,
    INCIDENT_SEGMENT_FIELDS,
    INCIDENT_SEGMENT_RULE,
    departs,
    relative_move,
)
from metric_tracker_rl.world.metrics_layer import counted_sessions, segment_metric, segment_sessions
from metric_tracker_rl.world.segments import SEGMENT_FIELDS, Segment

MIX = AUDIT.segmented
assert isinstance(MIX, AuditMix)
EVAL_SEEDS = (AUDIT.calibration_seed_base + 1, AUDIT.calibration_seed_base + 2)
TRAIN_SEEDS = (TRAIN_SEED_BASE + 77_001, TRAIN_SEED_BASE + 77_002)


def _brief(seed: int) -> str:
    env = MetricTrackerRlEnvironment()
    try:
        observation = env.reset(seed=seed, difficulty="audit")
        return f"{system_prompt('audit')}\n{first_prompt(observation)}\n{observation.model_dump_json()}"
    finally:
        env.close()


def _words(name: str) -> list[str]:
    return [name, name.replace("_", " ")]


@pytest.mark.parametrize("seed", [EVAL_SEEDS[0], TRAIN_SEEDS[0]])
def test_the_brief_names_no_mechanism(seed: int) -> None:
    """No defect's or incident kind's name (as written or in words) is anywhere in the prompts or the reset
    observation, nor a phrase of a kind's definition."""
    brief = _brief(seed).lower()
    names = [*DEFECT_REGISTRY, *MIX.incident_kinds]
    leaked = [name for name in names for word in _words(name) if word.lower() in brief]
    assert not leaked
    for name in MIX.incident_kinds:
        definition = INCIDENT_KIND_REGISTRY[name].definition.lower()
        phrases = [" ".join(words) for words in _windows(re.findall(r"[a-z_]+", definition), 8)]
        assert not [p for p in phrases if p in brief], name


def _windows(words: list[str], size: int) -> list[list[str]]:
    return [words[i : i + size] for i in range(max(0, len(words) - size + 1))]


def test_the_settings_that_name_a_mechanism_are_neither_shown_nor_taken() -> None:
    config = resolve_episode_config(seed=EVAL_SEEDS[0], difficulty="audit").public_dict()
    assert not {"incident_kinds", "concurrency", "note_share", "magnitude_scale", "decoy_ratio"} & set(config)
    with pytest.raises(ValueError, match="draws its mechanisms itself"):
        resolve_episode_config(seed=1, difficulty="audit", incident_kinds=["level_shift"])
    env = MetricTrackerRlEnvironment()
    try:
        observation = env.reset(seed=1, difficulty="audit", concurrency=2)
        assert observation.status == "error" and "concurrency cannot be set" in observation.message
    finally:
        env.close()


# A value each curriculum knob takes wherever it applies.
KNOB_VALUES = {
    "incident_kinds": ["level_shift"],
    "decoy_ratio": 0.5,
    "dimensions": ["platform", "country", "channel"],
    "max_cuboid_depth": 2,
    "magnitude_scale": 1.5,
    "concurrency": 1,
    "note_share": 0.3,
}


def _takes(difficulty: str, knob: str) -> bool:
    try:
        resolve_episode_config(seed=1, difficulty=difficulty, **{knob: KNOB_VALUES[knob]})
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("knob", sorted(DIAL_KNOBS))
def test_a_knob_refused_at_a_tier_names_the_listed_tiers_that_take_it(knob: str) -> None:
    """Where a knob does not apply, the refusal names exactly the listed tiers that take it: never the audit for
    a knob that names or sizes a mechanism, which it refuses too."""
    with pytest.raises(ValueError, match=f"{knob} applies at difficulty") as refusal:
        resolve_episode_config(seed=1, difficulty="easy", **{knob: KNOB_VALUES[knob]})
    named = re.findall(r"'(\w+)'", str(refusal.value).split(" only")[0])
    assert named == [name for name in DIFFICULTIES if _takes(name, knob)]


def test_listed_after_the_warehouse_its_tasks_are_of_the_split_that_lists_them() -> None:
    """Every audit task of the train split is a train episode and every one of the eval split an eval episode, so
    no train task draws a held-out mechanism."""
    assert DIFFICULTIES.index("audit") == DIFFICULTIES.index("warehouse") + 1
    for split in ("train", "eval"):
        tasks = [task for task in task_range(split) if task.get("difficulty") == "audit"]
        assert tasks and {mechanism_split(task["seed"]) for task in tasks} == {split}


def test_the_split_follows_the_seed_and_is_published() -> None:
    assert mechanism_split(TRAIN_SEED_BASE) == "train" and mechanism_split(TRAIN_SEED_BASE - 1) == "eval"
    assert "in the eval split" in _brief(EVAL_SEEDS[1]) and "in the train split" in _brief(TRAIN_SEEDS[1])
    kinds, defects = MIX.drawn("train")
    assert not set(kinds) & set(MIX.held_out_kinds) and not set(defects) & set(MIX.held_out_defects)
    assert MIX.drawn("eval") == (MIX.incident_kinds, MIX.defects)
    with pytest.raises(ValueError, match="split"):
        MIX.drawn("test")


@pytest.mark.parametrize(
    "seed",
    [
        EVAL_SEEDS[0],
        TRAIN_SEEDS[0],
        *(pytest.param(s, marks=pytest.mark.slow) for s in (EVAL_SEEDS[1], TRAIN_SEEDS[1])),
    ],
)
def test_what_an_episode_holds_is_its_splits(seed: int) -> None:
    world = build_audit_world(AUDIT, resolve_episode_config(seed=seed, difficulty="audit"))
    held = {d.kind for d in world.defects} | {i.kind for i in world.incidents}
    held_out = set(MIX.held_out_defects) | set(MIX.held_out_kinds)
    assert sum(d.kind in WAREHOUSE_DEFECTS for d in world.defects) <= MIX.listed_defects
    if mechanism_split(seed) == "train":
        assert not held & held_out
    else:
        assert world.defects[0].kind in MIX.held_out_defects


@pytest.mark.parametrize("seed", [EVAL_SEEDS[0], TRAIN_SEEDS[0]])
def test_the_truth_is_the_published_rule(seed: int) -> None:
    """Every defect row is, on its date, the first metric its defect moved past the margin, with the dashboard's
    value; every incident row departs from its baseline past the margin."""
    world = build_audit_world(AUDIT, resolve_episode_config(seed=seed, difficulty="audit"))
    rows = audit_rows(world, MIX)
    defects = {(d.kind, day): d for d in world.defects for day in d.days}
    assert rows
    for row in rows:
        if row.family != DATA_QUALITY:
            assert departs(row.observed, row.baseline, MIX.margin)
            continue
        record = defects[(row.kind, row.day)]
        assert row.segment == record.segment.normalised()
        assert row.observed == pytest.approx(
            segment_metric(world.dashboard, record.segment, row.metric, row.day), nan_ok=False
        )
        moves = {
            m: relative_move(
                segment_metric(world.dashboard, record.segment, m, row.day),
                segment_metric(world.clean_dashboard, record.segment, m, row.day),
            )
            for m in AUDIT_METRICS
        }
        assert moves[row.metric] > MIX.margin
        assert all(moves[m] <= MIX.margin for m in AUDIT_METRICS[: AUDIT_METRICS.index(row.metric)])


def test_a_move_is_relative_and_undefined_values_never_move() -> None:
    assert departs(111.0, 100.0, 0.1) and not departs(110.0, 100.0, 0.1) and departs(-0.2, 0.0, 0.1)
    assert not departs(float("nan"), 1.0, 0.1) and relative_move(1.0, float("nan")) == 0.0
    assert relative_move(3.0, 0.0) == np.inf and relative_move(0.0, 0.0) == 0.0


def test_a_subnormal_reference_moves_as_any_other() -> None:
    """The move is a ratio, so a reference too small for margin * |reference| to hold its value (a subnormal one)
    departs as a normal one does: zero from the smallest positive number is a whole reference away."""
    smallest = 5e-324
    assert relative_move(0.0, smallest) == 1.0 and departs(0.0, smallest, 0.75)
    assert relative_move(2 * smallest, smallest) == 1.0 and departs(2 * smallest, smallest, 0.75)
    assert relative_move(smallest, smallest) == 0.0 and not departs(smallest, smallest, 0.01)
    assert departs(0.0, 1e-310, 0.99) and not departs(1.05e-310, 1e-310, 0.1)


SPECIAL = st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, 1e-300, 5e-324, -5e-324, 1e-310])
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), SPECIAL)
MARGINS = st.floats(0.01, 0.99)


@settings(max_examples=300, deadline=None)
@given(value=NUMBERS, reference=NUMBERS, margin=MARGINS, wider=MARGINS)
@example(value=0.0, reference=5e-324, margin=0.75, wider=0.9)
def test_the_findings_measure_is_one_rule_for_the_truth_and_the_agents(
    value: float, reference: float, margin: float, wider: float
) -> None:
    """A departure is a relative move past the margin (relative_move, the one definition) over two finite values
    and never otherwise (an undefined or infinite value is no number the dashboard shows); the truth and the audit
    expert read that one definition (the expert's own copy once called an infinite value's move infinite, and a
    second form of the rule, margin * |reference|, once disagreed with it on subnormal numbers)."""
    finite = math.isfinite(value) and math.isfinite(reference)
    move = relative_move(value, reference)
    assert departs(value, reference, margin) == (move > margin)
    assert move >= 0 and not math.isnan(move)
    assert relative_move(-value, -reference) == move
    if not finite:
        assert move == 0.0 and not departs(value, reference, margin)
    elif reference == 0:
        assert move == (math.inf if value != 0 else 0.0)
    else:
        assert relative_move(reference, reference) == 0.0
    if departs(value, reference, max(margin, wider)):
        assert departs(value, reference, min(margin, wider))
    assert audit_expert.relative_move is relative_move and audit_truth.departs is departs
    for module in (audit_expert, audit_truth):
        assert "def relative_move" not in inspect.getsource(module)
        assert "def departs" not in inspect.getsource(module)


def test_a_mix_refuses_held_out_mechanisms_it_does_not_draw() -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match="held-out"):
        replace(MIX, held_out_defects=("no_such_defect",))
    with pytest.raises(ValueError, match="margin"):
        replace(MIX, margin=1.5)
    with pytest.raises(ValueError, match="listed_defects"):
        replace(MIX, listed_defects=-1)


def test_a_rationed_group_of_defects_holds_at_most_its_ration() -> None:
    """The ration counts only its own group's defects placed, and names no mechanism the draw does not hold."""
    from metric_tracker_rl.generation.defects import DefectRecord
    from metric_tracker_rl.generation.warehouse.world import DefectDraw
    from metric_tracker_rl.world.segments import Segment

    draw = DefectDraw(defect_edits(WAREHOUSE_DEFECTS), rationed=frozenset({"bot_farm", "late_load"}), ration=1)

    def placed(*kinds: str) -> list[DefectRecord]:
        return [DefectRecord(kind, (3,), Segment(), "sessions", kind) for kind in kinds]

    assert draw.allows("bot_farm", placed("clock_skew", "consent_drop"))
    assert not draw.allows("late_load", placed("bot_farm"))
    assert draw.allows("clock_skew", placed("bot_farm", "late_load"))
    with pytest.raises(ValueError, match="ration"):
        DefectDraw(defect_edits(WAREHOUSE_DEFECTS), rationed=frozenset({"no_such_defect"}), ration=1)


def test_the_audit_draws_more_ways_to_fail_than_a_text_could_list() -> None:
    """At least 20 data defects and 12 business incidents, at least five of them held out of the train split, and
    every mechanism the warehouse's procedure does not know has a finder of its own."""
    from metric_tracker_rl.agents.audit_expert import ALL_FINDERS

    assert len(MIX.defects) >= 20 and len(MIX.incident_kinds) >= 12
    assert len(MIX.held_out_defects) + len(MIX.held_out_kinds) >= 5
    warehouse_kinds = set(AUDIT_WAREHOUSE_KINDS)
    unknown = (set(MIX.defects) - set(WAREHOUSE_DEFECTS)) | (set(MIX.incident_kinds) - warehouse_kinds)
    assert unknown <= {finder.name for finder in ALL_FINDERS}


# --- which segment a business incident's row names ---------------------------------------------------------------

SEGMENT_SWEEP = 12  # audit calibration offsets: enough that a count spike's row is among them


def _move_in(world: Any, counted: Any, row: Any, segment: Segment) -> float:
    """How far the row's metric departs from its baseline in `segment` on the row's date."""
    values, baselines = daily_series(segment_sessions(world.log, counted, segment), *row.entity)
    return relative_move(float(values[row.day]), float(baselines[row.day]))


def _another_change_on(world: Any, row: Any) -> bool:
    """Whether a data defect, or an incident elsewhere, changed sessions on the row's date as well (a defect on the
    date beside it too: one that moves events' times carries them across midnight)."""
    return any(abs(row.day - day) <= 1 for d in world.defects for day in d.days) or any(
        i.record.day == row.day and i.segment.normalised() != row.segment for i in world.incidents
    )


@pytest.mark.slow
def test_every_incident_row_names_the_segment_the_findings_rule_says() -> None:
    """Over a seed sweep: a count spike's row names no app_version, channel or user_type; every incident row names
    only fields every session it changed shares, so widening its segment by any field it names only dilutes its
    move (the sessions outside are unchanged), and the rule is the published one."""
    assert INCIDENT_SEGMENT_RULE in FINDINGS_RULE and set(INCIDENT_SEGMENT_FIELDS) == set(SEGMENT_FIELDS)
    spikes = widened = 0
    for offset in range(SEGMENT_SWEEP):
        # version 1's episodes: at version 2's draw (a draft) one regional sign-out row's segment widened by a field
        # it names moves a little more (0.5234 against 0.5222), a case this rule's check does not yet explain
        config = resolve_episode_config(**calibration_reset_kwargs("audit", offset, 1))
        world = build_audit_world(config.tier, config)
        counted = counted_sessions(world.log)
        injected = {(i.kind, i.record.day, i.segment.normalised()) for i in world.incidents}
        for row in (r for r in audit_rows(world, audit_mix(AUDIT), counted) if r.family != DATA_QUALITY):
            named = row.segment.named()
            assert (row.kind, row.day, row.segment) in injected, row
            if row.family == "absolute_spike_in_event_count":
                spikes += 1
                assert not {"app_version", "channel", "user_type"} & set(named), row
            if "app_version" in named or _another_change_on(world, row):
                # a version's baseline is its peers' (the version rule), a wider segment's its weekdays' median: the
                # two moves are not on one scale; and where sessions outside changed too, widening need not dilute
                continue
            widened += 1
            move = _move_in(world, counted, row, row.segment)
            for field in named:
                wider = Segment(**{name: value for name, value in named.items() if name != field})
                assert _move_in(world, counted, row, wider) <= move + 1e-9, (row, field)
    assert spikes, "the sweep holds no count spike: widen SEGMENT_SWEEP"
    assert widened, "every row shares its date with another change: widen SEGMENT_SWEEP"
