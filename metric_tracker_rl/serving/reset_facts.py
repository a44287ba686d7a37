"""What a reset sends beside its episode: the catalogs built from the registries (the tools of the episode's tier,
the generator families, the tasks, the conversion metrics) and the published facts of the episode (its objective,
window, benign changes and brief), filled by the server so that every client shows what it built."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from metric_tracker_rl.analysis_tools import TOOL_REGISTRY, available_analysis_methods
from metric_tracker_rl.catalog.published import CONVERSION_METRICS, COUNT_DIFFICULTIES, fluctuation_bounds
from metric_tracker_rl.catalog.registry import derived_from
from metric_tracker_rl.catalog.shown_config import hides_incident_count
from metric_tracker_rl.catalog.tasks import EpisodeConfig, task_catalog
from metric_tracker_rl.catalog.tiers import EVENTS, TIERS, Tier
from metric_tracker_rl.generation.anomalies import FAMILY_REGISTRY
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.generation.segmented import episode_kinds
from metric_tracker_rl.models import AnalysisMethodInfo, ConversionMetricDefinition, EpisodeWindow, TaskInfo
from metric_tracker_rl.world.audit_brief import audit_brief
from metric_tracker_rl.world.segment_brief import KindText, benign_brief, kinds_brief, segmented_brief, tier_wording
from metric_tracker_rl.world.warehouse_brief import BENIGN_CHANGES, warehouse_brief

# What the reset's `instruction` says at every tier (the debugger shows it): how a step is spent and a report graded.
_STEPS_AND_GRADING = (
    "Each call that runs uses one step of the budget; a call refused before it runs (an unknown tool, arguments its "
    "checks refuse, invalid rows) uses none. The report is graded once (unless the episode allows more "
    "submissions) and the graded submission ends the episode; preview_submission checks rows without grading. A "
    "submission with invalid rows (a date outside the window, an entity not valid for its type, a repeated key) "
    "is refused without using a submission."
)
INSTRUCTION = (
    "Investigate the funnel with analysis calls (analysis_method + analysis_args; see available_methods) and "
    "submit an anomaly report, either as rows (classifications) or as generator calls (payload_generators). "
    "Report each incident once with date, entity_type, entity_name, anomaly_type, detection_method, "
    "baseline_value, observed_value, delta_value and severity. Days explained by get_annotations and side "
    "effects of an incident are not incidents; an empty report (classifications=[]) is right when nothing is "
    "anomalous. " + _STEPS_AND_GRADING
)


def instruction_for(difficulty: str, repaired_values: bool = False) -> str:
    """The reset's instruction at a tier: a tier of raw events names its own tools and reports rows only (it has
    no generators and no annotation tool); a tier of counts gets INSTRUCTION. `repaired_values`: the version played
    asks a defect's repaired value (its brief's entry is named too)."""
    if difficulty in COUNT_DIFFICULTIES:
        return INSTRUCTION
    tools = ", ".join(method.name for method in tier_methods(difficulty))
    named = report_rules(difficulty, repaired_values)
    rules = f"{', '.join(named[:-1])} and {named[-1]}"
    return (
        f"Investigate the raw events with analysis calls (analysis_method + analysis_args; the tools here: "
        f"{tools}) and submit an anomaly report as rows (classifications); this tier has "
        f"no generator calls. Report one row per date of each finding, with the fields the brief's {rules} (under "
        "segments) name; an empty report (classifications=[]) reports no finding. " + _STEPS_AND_GRADING
    )


def report_rules(difficulty: str, repaired_values: bool = False) -> tuple[str, ...]:
    """The brief's entries (under `segments`) that say how a row is reported at a tier of raw events: the audit's
    rules of a finding and its values (and a defect's repaired value, where the version asks it), the warehouse's
    reporting of an incident and of a defect."""
    if not TIERS[difficulty].hides_mechanisms:
        return ("incident_reporting", "defect_reporting")
    return ("findings", "values", *(["repaired_value"] if repaired_values else []))


def tier_methods(difficulty: str) -> list[AnalysisMethodInfo]:
    """The tools that answer at a tier, in registration order, each as its models read it there (the warehouse's
    `query` takes longer statements) and marked offered where the tier's tool list holds it. A tool the tier does not
    answer is left out: called there, it only answers that it is not offered."""
    return _methods_by_tier()[difficulty]


@derived_from(TOOL_REGISTRY)
def _methods_by_tier() -> dict[str, list[AnalysisMethodInfo]]:
    return {
        difficulty: [
            AnalysisMethodInfo(
                **replace(spec, description=description, args_model=args_model).info(),
                offered=difficulty in spec.offered_at,
            )
            for spec in available_analysis_methods()
            if difficulty in spec.answers_at
            for description, args_model in [spec.read_at(difficulty)]
        ]
        for difficulty in TIERS
    }


@derived_from(TOOL_REGISTRY, FAMILY_REGISTRY)
def catalogs() -> dict[str, Any]:
    """Reset-only catalogs, built again only after a registry they list changes (the tools are the episode's
    tier's: `tier_methods`)."""
    return {
        "available_synthetic_generator_methods": [family.spec() for family in FAMILY_REGISTRY.values()],
        "available_tasks": [TaskInfo(**task) for task in task_catalog()],
        "conversion_metric_definitions": [
            ConversionMetricDefinition(name=m.name, numerator=m.numerator, denominator=m.denominator, formula=m.formula)
            for m in CONVERSION_METRICS
        ],
    }


def episode_catalogs(tier: Tier) -> dict[str, Any]:
    """The catalogs a reset at `tier` sends: all of them, but at a tier that hides its mechanisms (the audit) none
    that would list some: no other tier's tasks (their configs name kinds) and no family's generator (its
    definition and sizes describe the lower tiers' mechanisms); the audit's brief defines its families itself."""
    if tier.hides_mechanisms:
        return {**catalogs(), "available_tasks": [], "available_synthetic_generator_methods": []}
    return catalogs()


def published_facts(episode: Episode) -> dict[str, Any]:
    """The reset observation's published facts: the server fills them, so every client shows what it built."""
    difficulty, dates = episode.config.difficulty, episode.public.dates
    tier = episode.config.tier
    segmented = tier.segmented is not None
    if tier.hides_mechanisms:  # the rules of a finding, no kind and no defect named
        return {
            "objective": episode.public.task["objective"],
            "window": EpisodeWindow(first_date=dates[0], last_date=dates[-1], days=len(dates)),
            "benign_fluctuations": BENIGN_CHANGES,
            "segments": audit_brief(tier.dimensions, tier.repaired_values),
        }
    kinds = (
        kinds_brief(
            [
                KindText(kind.name, kind.family, tier_wording(kind.definition, difficulty), kind.count_all_day)
                for kind in episode_kinds(tier, _kinds_config(episode.config))
            ]
        )
        if segmented
        else {}
    )
    if tier.data == EVENTS:
        return {
            "objective": episode.public.task["objective"],
            "window": EpisodeWindow(first_date=dates[0], last_date=dates[-1], days=len(dates)),
            "benign_fluctuations": BENIGN_CHANGES,
            "segments": {**warehouse_brief(tier.dimensions), **kinds},
        }
    return {
        "objective": episode.public.task["objective"],
        "window": EpisodeWindow(first_date=dates[0], last_date=dates[-1], days=len(dates)),
        "benign_fluctuations": benign_brief(difficulty) if segmented else fluctuation_bounds(difficulty),
        "segments": {**segmented_brief(difficulty, episode.config.note_share), **kinds} if segmented else None,
    }


def _kinds_config(config: EpisodeConfig) -> EpisodeConfig:
    """The config whose incident kinds the brief lists: the episode's own, but where its shown config counts no
    incident (a tier of raw events) a null episode lists the kinds its tier draws from, as every other episode
    does, so that no table tells it apart (none of them is drawn: its incidents line says none may be)."""
    if config.scenario_family != "null" or not hides_incident_count(config.difficulty):
        return config
    return replace(config, scenario_family="mixed", anomaly_count=None, anomaly_count_range=config.tier.count_range)
