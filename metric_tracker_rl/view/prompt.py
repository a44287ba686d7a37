"""What opens an episode for a model: the system prompt and the brief (the reset observation's published facts,
as data, and the text rendered from that data)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from metric_tracker_rl.catalog.published import (
    ANNOTATION_MEANINGS,
    DIFFICULTIES,
    config_meaning,
    difficulties_holding,
)
from metric_tracker_rl.catalog.shown_config import incident_line
from metric_tracker_rl.catalog.tiers import COUNTS, EVENTS, SEGMENTS, TIERS, DataKind
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.view import render
from metric_tracker_rl.world.audit_brief import audit_brief_data
from metric_tracker_rl.world.segment_brief import RELEASE_MEANING, SEGMENTED_NOTE_KINDS, drawn_families, tier_wording
from metric_tracker_rl.world.segments import CELL_FIELDS, world_of
from metric_tracker_rl.world.warehouse_brief import WAREHOUSE_SYSTEM_PROMPT, warehouse_brief_data

SYSTEM_PROMPT = """\
You investigate a synthetic product-funnel dataset (four weeks, or eight with segments, of daily and hourly
counts of app_open -> menu_open -> product_added_to_cart -> order_placed -> payment_successful) with read-only
analysis tools and submit one anomaly report that a grader scores.

Work like an analyst:
- Read the brief (each family's definition, root-cause entities and detection methods, the benign
  fluctuations), then get_annotations: a campaign, a holiday or late-arriving data explains its date. A release
  note only says that an app version shipped: the brief's calendar_note_kinds says what a release can do.
{tools}
- One incident moves several metrics: report it on the entity and family that explain it, one row per date
  it lasts, never its side effects. Every extra row lowers precision; a missed incident lowers recall.
- Finish with one submission: submit_report(rows) with rows copied from tool results, or
  submit_generators(generators). An empty report is right when nothing is anomalous.
Your steps are limited; be efficient and keep any text short."""


def _list(words: Sequence[str]) -> str:
    return ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else "".join(words)


# The listed tiers with segments' counts: those of SYSTEM_PROMPT's tools over segments (a tier of raw events has its
# own prompt and none of the tools over counts this one names).
COUNT_SEGMENTED_TIERS: tuple[str, ...] = tuple(name for name in difficulties_holding(SEGMENTS) if name in DIFFICULTIES)


def segment_arguments() -> str:
    """The fields a segment-scoped tool takes at each tier with segments: the cell fields everywhere, and each
    tier's daily-only ones there (which no hourly count has)."""
    extra = {
        name: [f for f in world_of(TIERS[name].dimensions).fields if f not in CELL_FIELDS]
        for name in COUNT_SEGMENTED_TIERS
    }
    tiers_by_fields: dict[tuple[str, ...], list[str]] = {}
    for name, fields in extra.items():
        if fields:
            tiers_by_fields.setdefault(tuple(fields), []).append(name)
    said = _list(CELL_FIELDS) + "".join(
        f", at {_list(names)} also {_list(fields)}" for fields, names in tiers_by_fields.items()
    )
    daily = sorted({f for fields in extra.values() for f in fields})
    return said + (f" (hourly data has no {' or '.join(daily)})" if daily else "")


_TOOLS = textwrap.fill(
    "list_suspicious_dates shows where to look; the `get_*_rows` tools list candidate rows, strongest first, a page "
    "at a time (limit, offset); confirm doubtful ones with `compare_*`, detect_funnel_break, check_impossible_counts "
    f"or hourly_rows_for_date. All of these read the whole funnel. With segments ({', '.join(COUNT_SEGMENTED_TIERS)}) "
    "every incident is confined to a segment and may barely show there: find it with compare_segments or query, "
    f"then read its row with the confirming tools' arguments that name its segment: {segment_arguments()}.",
    width=110,
    initial_indent="- ",
    subsequent_indent="  ",
    break_on_hyphens=False,
)
SYSTEM_PROMPT = SYSTEM_PROMPT.format(tools=_TOOLS)
# Each kind of data's system prompt, and how a brief of counts (brief_data) becomes its brief.
SYSTEM_PROMPTS: dict[DataKind, str] = {COUNTS: SYSTEM_PROMPT, EVENTS: WAREHOUSE_SYSTEM_PROMPT}
BRIEF_OF_DATA: dict[DataKind, Callable[[dict[str, Any]], dict[str, Any]]] = {COUNTS: dict, EVENTS: warehouse_brief_data}


def data_of(difficulty: object) -> DataKind:
    """What the data of an episode of `difficulty` are (counts for a name no tier has)."""
    tier = TIERS.get(str(difficulty))
    return COUNTS if tier is None else tier.data


def _config_view(config: dict[str, Any], kinds_listed: bool = False) -> dict[str, Any]:
    """The settings that are set (no null or empty ones), without anomaly_density: the `incidents` line says
    what may be inferred about the count, and the density, read as a share of 28 dates, would mislead. Where the
    brief lists the episode's incident kinds (`kinds_listed`), the config does not list them again."""
    hidden = {"anomaly_density", "incident_kinds"} if kinds_listed else {"anomaly_density"}
    return {key: value for key, value in config.items() if value not in (None, [], {}) and key not in hidden}


def brief_data(observation: MetricTrackerRlObservation) -> dict[str, Any]:
    """What an episode publishes at its start, as data: the task, its visible config and budgets, the metrics,
    the families (each with its definition, its `root_cause_entities` and `detection_methods` as lists and, per
    difficulty, its magnitude range as a (low, high) pair), and the bounds of the benign fluctuations.
    `first_prompt` renders it."""
    families = []
    for spec in observation.available_synthetic_generator_methods:
        magnitude = spec["magnitude"]
        families.append(
            {
                "family": spec["family"],
                "entity_type": spec["entity_type"],
                "root_cause_entities": list(spec["entity_names"]),
                "definition": spec["description"],
                "detection_methods": list(spec["detection_methods"]),
                "magnitude": magnitude["meaning"],
                **{difficulty: (low, high) for difficulty, (low, high) in magnitude["by_difficulty"].items()},
            }
        )
    if observation.objective is None or observation.window is None:
        raise ValueError("a brief needs a reset observation that carries the episode's objective and window")
    shown: dict[str, Any] = {"objective": observation.objective}
    if observation.task_id is not None:
        shown["task_id"] = observation.task_id
    window = observation.window
    drawn = drawn_families(observation.segments)
    config = _config_view(observation.config, kinds_listed=drawn is not None)
    shown.update(
        {
            "config": config,
            "config_meaning": config_meaning(config),
            "incidents": incident_line(observation.config),
            "window": {"first_date": window.first_date, "last_date": window.last_date, "days": window.days},
            "steps_remaining": observation.steps_remaining,
            "submissions_remaining": observation.submissions_remaining,
            "conversion_metrics": [
                {"metric": d.name, "formula": d.formula} for d in observation.conversion_metric_definitions
            ],
            # Where each family's incident is reported (every other key it moves is a side effect), and how large
            # its incidents are at each difficulty.
            "families": families,
            "benign_fluctuations": observation.benign_fluctuations,
            "calendar_note_kinds": _note_kinds(observation),
        }
    )
    if observation.segments is not None:
        # No magnitude is published with segments (the other tiers' ranges would be a threshold to read off, and
        # its meaning alone says nothing). Where the brief lists the episode's incident kinds, only the families
        # they are reported as.
        hidden = {*TIERS, "magnitude"}  # a family's per-tier entries and its magnitude
        shown["families"] = [
            {k: v for k, v in family.items() if k not in hidden}
            for family in families
            if drawn is None or family["family"] in drawn
        ]
        shown["segments"] = observation.segments
    difficulty = observation.config.get("difficulty")
    tier = TIERS.get(str(difficulty))
    if tier is not None and tier.hides_mechanisms:
        return audit_brief_data(shown)
    return BRIEF_OF_DATA[data_of(difficulty)](shown)


def _note_kinds(observation: MetricTrackerRlObservation) -> dict[str, str]:
    """What each calendar note an episode carries means."""
    difficulty = str(observation.config.get("difficulty"))
    if observation.segments is None:
        return dict(ANNOTATION_MEANINGS)
    return {
        **{kind: ANNOTATION_MEANINGS[kind] for kind in SEGMENTED_NOTE_KINDS},
        "release": tier_wording(RELEASE_MEANING, difficulty),
    }


def system_prompt(difficulty: str | None) -> str:
    """The system prompt of an episode of `difficulty`: its data's (SYSTEM_PROMPT where they are counts)."""
    return SYSTEM_PROMPTS[data_of(difficulty)]


# A brief's family columns that hold a list (the text joins it with commas).
FAMILY_LIST_COLUMNS = ("root_cause_entities", "detection_methods")


def _family_text(family: dict[str, Any]) -> dict[str, Any]:
    """A brief's family row as its text shows it: lists joined by commas, ranges as `low-high`."""
    return {
        key: ",".join(value)
        if key in FAMILY_LIST_COLUMNS
        else f"{value[0]}-{value[1]}"
        if key in DIFFICULTIES
        else value
        for key, value in family.items()
    }


def _brief_text(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "families": [_family_text(family) for family in data["families"]]}


FIRST_PROMPT_NEXT = "investigate with the tools, then submit one report"


def first_prompt(observation: MetricTrackerRlObservation) -> str:
    """The user message that opens an episode: its brief, then what to do, rendered from the reset observation."""
    return first_prompt_text(brief_data(observation))


def first_prompt_text(data: dict[str, Any]) -> str:
    return render.render({**_brief_text(data), "next": FIRST_PROMPT_NEXT})
