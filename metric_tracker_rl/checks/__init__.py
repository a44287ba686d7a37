"""Checks a third party runs on their own tool or on a tier, as Gymnasium's `check_env` on an environment:
`check_tool(name, tools)` holds one tool to the tools' contract; `check_tier(make_env, tier, seeds)` plays a tier's
episodes through an environment and holds them to the episodes' contract. Each raises CheckFailed (an
AssertionError) naming the check, the tool or tier, and what was expected."""

from metric_tracker_rl.checks.failure import CheckFailed
from metric_tracker_rl.checks.tier import check_tier, check_tool_list
from metric_tracker_rl.checks.tool import check_plain_json, check_tool

__all__ = ["CheckFailed", "check_plain_json", "check_tier", "check_tool", "check_tool_list"]
