"""The tools, one module each. A module defines its tool whole (its argument model unless a shared one fits, its
description, the tiers that offer it, its function) and registers it when imported; what several tools share lives
in the modules beside this package.

Importing this package imports every module in it: those of LISTING first, in that order, then any other in name
order. Registration order is the order a model's tool list, the wire's `available_methods` and an unknown tool's
error show the tools in, so a new tool is one new module here, listed after the others unless LISTING places it.
"""

from __future__ import annotations

from metric_tracker_rl.catalog.registry import import_package_modules

LISTING = (
    "task_overview",
    "list_dates",
    "list_entities",
    "get_annotations",
    "rows_for_date",
    "hourly_rows_for_date",
    "show_raw_data",
    "list_suspicious_dates",
    "get_metric_median",
    "get_metric_std_dev_from_median",
    "preview_submission",
    "compare_rate_to_median",
    "compare_count_to_median",
    "compare_hourly_mix_to_baseline",
    "detect_funnel_break",
    "check_impossible_counts",
    "get_median_filter_rows",
    "get_rate_drop_from_median_rows",
    "get_rate_spike_from_median_rows",
    "get_absolute_drop_in_event_count_rows",
    "get_absolute_spike_in_event_count_rows",
    "get_rows_with_abs_diff_from_median_gt",
    "get_funnel_break_rows",
    "get_hourly_traffic_mix_shift_rows",
    "get_instrumentation_data_quality_issue_rows",
    "payload_generator",
    "get_releases",
    "compare_segments",
    "get_context",
    "query",
)


def tool_module_names() -> tuple[str, ...]:
    """Every tool module of this package, in the order they register (importing any not imported yet)."""
    return import_package_modules(__name__, __path__, LISTING)


tool_module_names()
