"""Provisional tool-call adapter (to be replaced by metric_tracker_rl.tool_calls): the model-facing tools
from the registry, a tool call -> action, an observation -> text."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from metric_tracker_rl import (
    MetricSubmissionRow,
    MetricTrackerRlAction,
    MetricTrackerRlObservation,
    PayloadGeneratorMethod,
)
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY

SUBMIT_TOOLS = {
    "submit_report": ("rows", "classifications", MetricSubmissionRow,
                      "Submit the final anomaly report as rows; it is graded."),
    "submit_generators": ("generators", "payload_generators", PayloadGeneratorMethod,
                          "Submit generator calls; the server runs them, merges their rows and grades the result."),
}


def model_tools() -> list[dict[str, Any]]:
    tools = [{"name": spec.name, "description": spec.description, "parameters": spec.parameters_schema()}
             for spec in TOOL_REGISTRY.values()]
    for name, (key, _, model, description) in SUBMIT_TOOLS.items():
        items = model.model_json_schema()
        tools.append({"name": name, "description": description,
                      "parameters": {"type": "object", "properties": {key: {"type": "array", "items": items,
                                                                    "description": f"the {key} to submit"}},
                                     "required": [key], "additionalProperties": False}})
    return tools


def action_for_call(name: str, arguments: dict[str, Any]) -> MetricTrackerRlAction | str:
    if name in SUBMIT_TOOLS:
        key, field, _, _ = SUBMIT_TOOLS[name]
        try:
            return MetricTrackerRlAction(**{field: arguments.get(key)})
        except ValidationError as exc:
            return f"invalid {key} for {name}: {exc.errors()[0]['msg']}; nothing was submitted"
    if name in TOOL_REGISTRY:
        return MetricTrackerRlAction(analysis_method=name, analysis_args=arguments)
    return f"unknown tool {name!r}; valid tools: {', '.join([*TOOL_REGISTRY, *SUBMIT_TOOLS])}"


def observation_text(observation: MetricTrackerRlObservation) -> str:
    if observation.status == "error":
        return json.dumps({"status": "error", "message": observation.message})
    if observation.status == "graded":
        breakdown = observation.reward_breakdown.model_dump() if observation.reward_breakdown else None
        return json.dumps({"status": "graded", "message": observation.message, "reward": observation.reward,
                           "reward_breakdown": breakdown, "done": observation.done})
    return json.dumps({"status": observation.status, "steps_remaining": observation.steps_remaining,
                       "result": observation.analysis_result})


SYSTEM_PROMPT = "You investigate a synthetic product-funnel dataset with tools and submit one anomaly report."


def first_prompt(observation: MetricTrackerRlObservation) -> str:
    brief = {"task_id": observation.task_id, "objective": observation.message,
             "instruction": observation.instruction, "config": observation.config,
             "steps_remaining": observation.steps_remaining}
    return f"New episode:\n{json.dumps(brief, indent=1)}\nInvestigate with the tools, then submit one report."
