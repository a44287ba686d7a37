"""How right an audit agent's rows are where their key is: each submitted row on an expected key judged by the
grader's own pass (grading.grader.judge_rows, with the arguments a report step grades with), and per mechanism the
share of those rows with full credit, the segment's, the values' (all three in tolerance) and the severity's. Recall
says which rows were found; this says what a found row lost.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from metric_tracker_rl.catalog.published import row_key
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.validation import entity_names_of
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.grading.grader import judge_rows
from metric_tracker_rl.models import MetricSubmissionRow
from metric_tracker_rl.serving.report_step import overlap_traffic

CREDITS = ("full", "segment", "values", "severity")  # the shares published per mechanism


def judged_rows(seed: int, rows: list[MetricSubmissionRow], version: int | None = None) -> list[dict[str, Any]]:
    """Each submitted row on an expected key of audit episode `seed` (at `version`; None: the latest): its key and
    which credits it earned (a report's queries ran, so the query method earns its credit)."""
    config = resolve_episode_config(seed=seed, difficulty="audit", version=version)
    episode = build_episode(config)
    truth = episode.truth
    with entity_names_of("audit"):  # the names the audit's grader accepts (a defect's metric among them)
        verdicts = judge_rows(
            rows,
            {row_key(r.date, r.entity_type, r.entity_name): r for r in truth.expected_rows},
            truth.neutral_keys,
            episode.public.dates,
            segment_values=episode.public.segment_values(),
            leaf_traffic=overlap_traffic(episode),
            methods_used=frozenset({"query"}),
            twin_rows=truth.twin_rows,
            repaired_values=config.tier.repaired_values,
        )
    return [
        {
            "key": verdict.key,
            "full": verdict.assessment.quality >= 1.0 - 1e-9,
            "segment": verdict.assessment.segment >= 1.0 - 1e-9,
            "values": verdict.assessment.values_in_tolerance == verdict.assessment.values_asked,
            "severity": verdict.assessment.severity,
        }
        for verdict in verdicts
        if verdict.assessment is not None
    ]


def quality_by_mechanism(
    results: list[dict[str, Any]], truths: dict[int, list[tuple[str, str]]], agent: str
) -> dict[str, dict[str, Any]]:
    """Per mechanism, over `agent`'s matched rows: their number and the share earning each credit of CREDITS."""
    earned: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for result in results:
        if result["agent"] != agent or "judged" not in result:
            continue
        mechanism_of = dict(truths[result["seed"]])
        for judged in result["judged"]:
            earned[mechanism_of.get(judged["key"], "?")].append(judged)
    return {
        mechanism: {"matched": len(rows), **{c: round(sum(r[c] for r in rows) / len(rows), 3) for c in CREDITS}}
        for mechanism, rows in sorted(earned.items())
    }


def quality_table(report: dict[str, Any]) -> str:
    """Per mechanism (both splits' episodes together): the expert's matched rows and the share of them with full
    credit, the segment's, all three values in tolerance and the right severity."""
    lines = [
        "| mechanism | matched rows | full credit | segment | values | severity |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    merged: dict[str, dict[str, float]] = {}
    for data in report["splits"].values():
        for mechanism, stats in data.get("row_quality", {}).items():
            entry = merged.setdefault(mechanism, dict.fromkeys(("matched", *CREDITS), 0.0))
            entry["matched"] += stats["matched"]
            for credit in CREDITS:
                entry[credit] += stats[credit] * stats["matched"]
    for mechanism, entry in sorted(merged.items()):
        shares = " | ".join(f"{entry[c] / entry['matched']:.2f}" for c in CREDITS)
        lines.append(f"| {mechanism} | {entry['matched']:.0f} | {shares} |")
    return "\n".join(lines)
