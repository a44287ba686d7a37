"""A step's observation as a model reads it: the text (`render_observation`), and the structured view of what that
text shows (`seen`: explicit status, numbers as shown, typed rows, the brief as data). Both are built from the
observation's structure wherever it is read; nothing here reads text back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.view import render
from metric_tracker_rl.view.prompt import FIRST_PROMPT_NEXT, brief_data, first_prompt_text
from metric_tracker_rl.world.segments import SEGMENT_FIELDS


def _result_view(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    """A tool result as the model reads it: without the echo of the call (the model wrote it) and with a paged
    table's count folded into its header (`rows: 20 of 112 rows`, then `next_offset` while rows remain)."""
    shown = {key: value for key, value in result.items() if key not in ("method", "arguments")}
    totals: dict[str, int] = {}
    if "row_count" in shown and isinstance(shown.get("rows"), list):
        totals["rows"] = shown.pop("row_count")
        if not shown.get("offset"):
            shown.pop("offset", None)
        if shown.get("next_offset") is None:
            shown.pop("next_offset", None)
        shown.pop("truncated", None)
    return shown, totals


def _graded_view(observation: MetricTrackerRlObservation) -> dict[str, Any]:
    breakdown = observation.reward_breakdown
    graded: dict[str, Any] = {"message": observation.message, "reward": observation.reward}
    if breakdown is not None:
        graded.update({key: value for key, value in breakdown.model_dump().items() if value is not None})
    for key in ("expected_row_count", "correct_row_count"):
        if getattr(observation, key) is not None:
            graded[key] = getattr(observation, key)
    if observation.submission_issues:
        graded["submission_issues"] = [issue.model_dump() for issue in observation.submission_issues]
    if observation.comparison is not None:  # the episode is over: why the score is what it is, row by row
        graded["verdicts"] = [
            {
                "row": entry["row_index"],
                "key": entry["key"],
                "verdict": entry["verdict"],
                "quality": entry.get("quality"),
            }
            for entry in observation.comparison["rows"]
        ]
        graded["missed"] = [_missed_key(row) for row in observation.comparison["missed"]]
    return graded


def _missed_key(row: dict[str, Any]) -> str:
    """An expected row's key, with its segment where it names one."""
    segment = ",".join(f"{name}={row[name]}" for name in SEGMENT_FIELDS if row.get(name))
    key = f"{row['date']}|{row['entity_type']}|{row['entity_name']}"
    return f"{key} ({segment})" if segment else key


Shown = tuple[dict[str, Any], dict[str, int], dict[str, frozenset[str]]]


def _shown(observation: MetricTrackerRlObservation) -> Shown:
    """What a step's text shows (see `view.render`): the shown value, the paged tables' totals and the columns
    each table states once."""
    totals: dict[str, int] = {}
    shared: dict[str, frozenset[str]] = {}
    if observation.status == "ok":
        shown, totals = _result_view(observation.analysis_result or {})
        method = (observation.analysis_result or {}).get("method")
        spec = TOOL_REGISTRY.get(method) if isinstance(method, str) else None
        if spec is not None and spec.constant_columns:
            shared["rows"] = spec.constant_columns
        if observation.message != f"{method} ran.":
            shown["note"] = observation.message
    elif observation.status == "graded":
        shown = {"graded": _graded_view(observation)}
    else:
        shown = {"error": observation.message}
        if observation.submission_issues:
            shown["submission_issues"] = [issue.model_dump() for issue in observation.submission_issues]
    shown.update(steps_remaining=observation.steps_remaining, submissions_remaining=observation.submissions_remaining)
    if observation.done:
        shown["episode_over"] = True
    return shown, totals, shared


def render_observation(observation: MetricTrackerRlObservation) -> str:
    """One step's observation as the model reads it (see `view`): the tool's result, an `error:` line, or a
    `graded:` block; then the budgets left. Catalogs and debug fields are left out. Every harness renders the
    observation it received with this, so each shows the same text."""
    return render.render(*_shown(observation))


# --- the structured view (reference agents decide from it) -------------------------------------------


@dataclass(frozen=True)
class Feedback:
    """A graded submission's numbers as its text shows them."""

    score: float
    matched_row_count: int | None = None
    submitted_row_count: int | None = None
    false_positive_count: int | None = None


@dataclass(frozen=True)
class SeenObservation:
    """One step (or the brief) as a model reads it: `text` is what the model reads, and every other field is a
    fact that text shows (numbers at the precision shown), so an agent that decides from them decides from what
    a model could read. `brief` is `brief_data`'s value: families' entities as lists, magnitude ranges as pairs."""

    text: str
    status: Literal["ready", "ok", "error", "graded"]  # ready: the brief
    analysis_result: dict[str, Any] | None = None
    reward_breakdown: Feedback | None = None
    expected_row_count: int | None = None
    steps_remaining: int = 0
    submissions_remaining: int = 0
    done: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    brief: dict[str, Any] = field(default_factory=dict)


_BUDGET_KEYS = ("steps_remaining", "submissions_remaining")


def _feedback(graded: dict[str, Any]) -> Feedback:
    return Feedback(**{key: graded[key] for key in Feedback.__dataclass_fields__ if key in graded})


def _rounded_brief(data: dict[str, Any]) -> dict[str, Any]:
    """The brief's data at the precision its text shows (a magnitude range is shown whole, as `low-high`)."""
    return {
        key: [
            dict(
                render.rounded({k: v for k, v in family.items() if k not in DIFFICULTIES}),
                **{k: v for k, v in family.items() if k in DIFFICULTIES},
            )
            for family in value
        ]
        if key == "families"
        else render.rounded(value)
        for key, value in data.items()
    }


def seen(observation: MetricTrackerRlObservation) -> SeenObservation:
    """An observation as the structured view of what its model-facing text shows, with that text."""
    if observation.status == "ready":
        published = brief_data(observation)
        data = _rounded_brief({**published, "next": FIRST_PROMPT_NEXT})
        budgets = {key: data.pop(key) for key in _BUDGET_KEYS}
        return SeenObservation(first_prompt_text(published), "ready", config=data["config"], brief=data, **budgets)
    shown, totals, shared = _shown(observation)
    text = render.render(shown, totals, shared)
    value = render.rounded(shown)
    budgets = {**{key: value.pop(key) for key in _BUDGET_KEYS}, "done": bool(value.pop("episode_over", False))}
    return _step_view(text, observation.status, value, budgets)


def _step_view(text: str, status: str, value: dict[str, Any], budgets: dict[str, Any]) -> SeenObservation:
    """A tool result's, an error's or a grading's view from its shown value (budgets taken out)."""
    if status == "error":
        return SeenObservation(text, "error", **budgets)
    if status == "graded":
        graded = value["graded"]
        return SeenObservation(
            text,
            "graded",
            reward_breakdown=_feedback(graded),
            expected_row_count=graded.get("expected_row_count"),
            **budgets,
        )
    return SeenObservation(text, "ok", analysis_result=value, **budgets)
