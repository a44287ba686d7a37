"""The audit's separation table (lab/calibration/separation.py): its kept artifact is what the page shows and what
the transcripts give today, its episodes' rows are the grader's, its interactions follow the calibration's rule, and
its proposed shares keep every mechanism drawn and none past the cap."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab import docs_blocks
from lab.calibration import separation
from lab.calibration.audit_calibration import expected_keys
from lab.calibration.replay import HISTORY
from lab.calibration.separation_worlds import world_facts
from lab.tests.helpers import ROOT
from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.catalog.tiers import AUDIT_DEFECTS, DEEP_MIX
from metric_tracker_rl.generation.defects import DEFECT_REGISTRY
from metric_tracker_rl.generation.segment_plan import segmented_plan
from metric_tracker_rl.generation.warehouse.events import draw_event_log
from metric_tracker_rl.world.segments import world_of

KEPT = separation.kept()


def test_the_page_shows_the_kept_table() -> None:
    shown = docs_blocks.shown((ROOT / "lab/docs/audit.md").read_text(encoding="utf-8"), "audit-separation")
    assert shown == separation.table(KEPT)
    for name, line in KEPT["mechanisms"].items():
        model = f"{line['model_held']}/{line['model_rows']}" if line["model_rows"] else "-"
        assert f"| {name} | {model}" in shown
    moved = copy.deepcopy(KEPT)
    moved["mechanisms"]["level_shift"]["model_held"] -= 1
    assert separation.table(moved) != shown


def test_the_kept_table_is_what_the_transcripts_give_today() -> None:
    """Every transcript's episode rebuilt (the sets that reproduce here, the others from their kept worlds), its
    report's keys read again, the table and the weights computed again."""
    assert separation.render() == KEPT


def test_the_kept_table_counts_every_transcript_and_row() -> None:
    for commit in separation.SETS:
        files = list((HISTORY / commit).glob("audit-*.json"))
        assert KEPT["sets"][commit]["episodes"] == len(files) > 0
    rows = [row for episode in KEPT["episodes"] for row in episode["rows"]]
    assert sum(line["model_rows"] for line in KEPT["mechanisms"].values()) == len(rows)
    assert sum(line["model_held"] for line in KEPT["mechanisms"].values()) == sum(held for *_, held in rows)
    assert abs(sum(w["weight"] for w in KEPT["weights"].values()) - 1) < 1e-3
    assert set(KEPT["weights"]) == set(KEPT["mechanisms"]) >= set(separation.audit_mechanisms())


def test_a_rebuilt_world_that_is_not_the_graders_is_refused() -> None:
    """The rebuilt rows of an episode must give the count its recorded grading message gives."""
    commit, name = "32cc005", "audit-877002.json"
    world = json.loads(separation.KEPT_WORLDS.read_text(encoding="utf-8"))[commit]["episodes"][name]
    entry = separation.episode_entry(commit, name, world)
    assert (sum(held for *_, held in entry["rows"]), len(entry["rows"])) == (10, 17)
    short = {**world, "rows": world["rows"][1:]}
    with pytest.raises(ValueError, match="the grader said"):
        separation.episode_entry(commit, name, short)


def test_the_interactions_follow_the_calibrations_rule() -> None:
    """On two episodes holding the calibration's interactions, each row is marked as its rule marks it."""
    seeds = {173149, 624358}  # at version 1: a defect on an incident's date; two incidents in one segment
    for seed in seeds:
        world = world_facts(seed, {"version": 1})
        by_mechanism, by_interaction = expected_keys(seed, version=1)
        assert [(r["key"], r["mechanism"]) for r in world["rows"]] == by_mechanism
        ours = [
            (r["key"], name)
            for r in world["rows"]
            for name in separation.interactions(r, world)
            if name in ("defect_on_incident", "one_segment_two_incidents")
        ]
        assert sorted(ours) == sorted(by_interaction) != []


def _line(expert: float | None, held: int, rows: int) -> dict[str, Any]:
    return {"expert_recall": expert, "model_held": held, "model_rows": rows}


lines = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=4),
    st.builds(
        lambda expert, rows, share: _line(expert, round(rows * share), rows),
        st.one_of(st.none(), st.floats(0, 1)),
        st.integers(0, 30),
        st.floats(0, 1),
    ),
    min_size=4,
    max_size=40,
)


@given(lines, st.floats(0, 1))
def test_every_mechanism_is_drawn_none_past_the_cap_and_a_wider_gap_weighs_more(
    mechanisms: dict[str, dict[str, Any]], prior: float
) -> None:
    weights = separation.weights(mechanisms, prior)
    shares = {name: w["weight"] for name, w in weights.items()}
    assert abs(sum(shares.values()) - 1) <= 5e-5 * len(shares) + 1e-9  # each share rounded to 4 decimals
    assert all(0 < share <= separation.CAP + 1e-4 for share in shares.values())
    for one in weights:
        for other in weights:
            if float(weights[one]["gap_used"] or 0) > float(weights[other]["gap_used"] or 0):
                assert shares[one] >= shares[other]


@given(st.lists(st.floats(0.01, 10), min_size=4, max_size=30))
def test_capped_shares_fill_one_and_keep_their_order(raw: list[float]) -> None:
    shares = separation.capped({str(i): v for i, v in enumerate(raw)})
    assert abs(sum(shares.values()) - 1) < 1e-9
    assert max(shares.values()) <= separation.CAP + 1e-12
    ordered = sorted(range(len(raw)), key=lambda i: raw[i])
    assert all(shares[str(a)] <= shares[str(b)] + 1e-12 for a, b in zip(ordered, ordered[1:], strict=False))
    if max(raw) / sum(raw) <= separation.CAP:
        assert all(abs(shares[str(i)] - v / sum(raw)) < 1e-12 for i, v in enumerate(raw))


def test_too_few_mechanisms_for_the_cap_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot each stay"):
        separation.capped({"a": 1.0, "b": 1.0, "c": 1.0})


def _episode(rows: list[list[Any]], agents: dict[str, list[str]] | None = None) -> dict[str, Any]:
    entry = {"set": "s", "file": "f.json", "seed": 1, "settings": {}, "here": True, "rows": rows}
    return {**entry, "agents": agents} if agents is not None else entry


def test_the_same_rows_are_counted_for_each_player() -> None:
    rows = [
        ["k1", "bot_farm", [], False],
        ["k2", "bot_farm", ["defect_on_incident"], True],
        ["k3", "level_shift", [], True],
    ]
    agents = {separation.EXPERT: ["k1", "k2", "k3"], separation.GENERIC: ["k3"]}
    paired = separation.same_episodes([_episode(rows, agents), _episode(rows)])  # the second was not played
    assert paired["mechanisms"]["bot_farm"] == {
        "rows": 2,
        "model": 1,
        separation.EXPERT: 2,
        separation.GENERIC: 0,
        "episodes": 1,
    }
    assert paired["interactions"]["defect_on_incident"]["rows"] == 1
    assert paired["mechanisms"]["level_shift"][separation.GENERIC] == 1


def test_kept_plays_of_other_rows_are_refused() -> None:
    """A run without --play carries the kept plays over only where the episode expects the same keys."""
    rows = [["k1", "bot_farm", [], False]]
    kept = [_episode(rows, {separation.EXPERT: ["k1"], separation.GENERIC: []})]
    carried = [_episode(rows)]
    separation.agent_plays(carried, kept, workers=1)
    assert carried[0]["agents"] == kept[0]["agents"]
    with pytest.raises(SystemExit, match="--play"):
        separation.agent_plays([_episode([["k2", "bot_farm", [], False]])], kept, workers=1)


def test_the_side_table_defects_are_those_that_write_a_side_table() -> None:
    """Each defect the audit draws, applied to one clean log: those listed edit currency_rates or
    tracking_changelog, and no other does."""
    key = EpisodeKey.of(5)
    log = draw_event_log(segmented_plan(key, 56, world_of(DEEP_MIX.dimensions)), key)
    writes = set()
    for index, name in enumerate(AUDIT_DEFECTS):
        edited, _ = DEFECT_REGISTRY[name].apply(log, derive_rng(key, "test-side-tables", index))
        rates_moved = not np.array_equal(edited.units_per_usd, log.units_per_usd, equal_nan=True)
        if rates_moved or edited.changelog != log.changelog:
            writes.add(name)
    assert writes == set(separation.SIDE_TABLE_DEFECTS)
