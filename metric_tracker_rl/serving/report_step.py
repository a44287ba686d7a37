"""A report step: rows refused before grading (they use no submission), the grade of the rest, and what the
observation says of it. The reward is the improvement over the episode's best earlier credited score, so an
episode's rewards sum to its score; the last submission shows the whole breakdown, an earlier one only its counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metric_tracker_rl.catalog.tasks import RETRY_COST
from metric_tracker_rl.catalog.validation import validate_rows
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.grading.grader import LeafTraffic, grade_submission, graded_comparison, leaf_traffic_of
from metric_tracker_rl.models import MetricSubmissionRow

MAX_SUBMISSION_ROWS = 200
# The key a refused call's fields carry; the environment takes it out before the observation is built.
REFUSED = "refused"


def error_fields(message: str) -> dict[str, Any]:
    """Observation fields of an error a tool answered after it ran: no reward, nothing used but the step."""
    return {"status": "error", "reward": 0.0, "message": message}


def refused_fields(message: str) -> dict[str, Any]:
    """Observation fields of a call refused before anything ran (docs/tools.md, "Which calls cost a step"): no
    tool of the tier by that name, arguments its checks refuse, a report whose rows are refused before grading, an
    action that is not one call. It uses no step and no submission, whatever the transport."""
    return {**error_fields(message), REFUSED: True}


def overlap_traffic(episode: Episode) -> LeafTraffic | None:
    """T of the overlap credit, from the episode's public counts, where its tier credits segments by overlap
    (tiers.py: deep); None where the grader keeps frontier's table."""
    if episode.config.tier.segment_credit != "overlap":
        return None
    if episode.truth.segment_traffic is not None:  # the warehouse: its leaves' counted sessions
        return LeafTraffic(tuple(episode.public.dates), *episode.truth.segment_traffic)
    segments = episode.public.segments
    return None if segments is None else leaf_traffic_of(segments, episode.public.dates)


def retry_note(submission: int) -> str:
    """How a retry's score was credited (nothing to say about the first submission)."""
    if submission <= 1:
        return ""
    cost = RETRY_COST * (submission - 1)
    return f" (credited {cost:g} less as submission {submission})"


def refused_report(rows: list[MetricSubmissionRow], episode: Episode) -> dict[str, Any] | None:
    """The fields of a report refused before grading (too many rows, or rows invalid without any truth), or None."""
    if len(rows) > MAX_SUBMISSION_ROWS:
        return refused_fields(
            f"A submission may hold at most {MAX_SUBMISSION_ROWS} rows, got {len(rows)} (no submission "
            "used). Report incidents, not every candidate."
        )
    issues = validate_rows(rows, episode.public.dates, episode.public.segment_values())
    if not issues:
        return None
    listed = "; ".join(f"row {i}: {issue.message}" for i, issue in sorted(issues.items()))
    return {
        **refused_fields(
            f"Submission refused, no submission used: {len(issues)} invalid row(s): {listed}. "
            "Fix or drop them and submit again."
        ),
        "submission_issues": [issues[i] for i in sorted(issues)],
    }


@dataclass(frozen=True)
class Graded:
    """A graded report, as its step reports it: the submission's number, its score and the episode's after it,
    the reward it earned, and whether the episode ended with it."""

    submission: int
    score: float
    episode_score: float
    reward: float
    done: bool


def grading_arguments(episode: Episode, methods_used: frozenset[str]) -> dict[str, Any]:
    """What the grader reads of an episode beside a report: its truth, its dates and segments, and the tools used."""
    truth = episode.truth
    return {
        "expected_rows": truth.expected_rows,
        "neutral_keys": truth.neutral_keys,
        "valid_dates": episode.public.dates,
        "segment_values": episode.public.segment_values(),
        "leaf_traffic": overlap_traffic(episode),
        "methods_used": methods_used,
        "twin_rows": truth.twin_rows,
        "repaired_values": episode.config.tier.repaired_values,
    }


def grade_report(
    rows: list[MetricSubmissionRow],
    episode: Episode,
    methods_used: frozenset[str],
    submissions: int,
    best_credited: float,
) -> tuple[dict[str, Any], Graded]:
    """The fields of a graded report's step, and the episode's bookkeeping after it, given its submissions so far
    and its best credited score before this one."""
    arguments = grading_arguments(episode, methods_used)
    result = grade_submission(rows, **arguments)
    submission = submissions + 1
    credited = max(0.0, result.score - RETRY_COST * (submission - 1))
    episode_score = max(best_credited, credited)
    left = episode.config.max_submissions - submission
    after = Graded(
        submission,
        result.score,
        episode_score,
        max(0.0, credited - best_credited),
        result.score >= 1.0 or left <= 0,
    )
    breakdown = result.breakdown
    expected = len(episode.truth.expected_rows)
    if after.done:
        message = (
            f"Graded {breakdown.submitted_row_count} row(s): {breakdown.matched_row_count} of {expected} expected "
            f"row(s) found, {breakdown.false_positive_count} false positive(s) (of which "
            f"{breakdown.neutral_row_count} on side-effect keys). Score {result.score:.4f}{retry_note(submission)}; "
            f"episode score {episode_score:.4f}. The episode is over."
        )
        final: dict[str, Any] = {
            "reward_breakdown": breakdown,
            "expected_row_count": expected,
            "correct_row_count": breakdown.matched_row_count,
        }
        if not episode.config.held_out:  # an open episode is public anyway; a held-out one may come back
            final["comparison"] = graded_comparison(rows, **arguments)
    else:
        # Not the last submission: only the score and the row counts (see RewardBreakdown).
        message = (
            f"Graded {breakdown.submitted_row_count} row(s): {breakdown.matched_row_count} on expected "
            f"keys, {breakdown.false_positive_count} false positive(s). Score {result.score:.4f}"
            f"{retry_note(submission)}; episode score {episode_score:.4f}. {left} "
            f"submission(s) left; each retry costs {RETRY_COST} of its score."
        )
        final = {"reward_breakdown": breakdown.coarse(), "correct_row_count": breakdown.matched_row_count}
    fields = {
        "status": "graded",
        "reward": round(after.reward, 6),
        "message": message,
        "submitted_rows": rows,
        "submission_preview": {"row_count": len(rows), "issue_count": 0},
        "submission_issues": [],
        **final,
    }
    return fields, after


def debug_payload(episode: Episode) -> dict[str, Any]:
    """What a debug server shows of an episode's truth with every observation: its expected rows, neutral keys and
    what was injected (never served by a server that is not in debug mode)."""
    truth = episode.truth
    dates = episode.public.dates
    return {
        "expected_rows": [row.model_dump() for row in truth.expected_rows],
        "neutral_keys": sorted(truth.neutral_keys),
        "injections": [
            {
                "family": r.family,
                "date": dates[r.day],
                "entity_type": r.entity_type,
                "entity_name": r.entity_name,
                "magnitude": r.magnitude,
                "hours": list(r.hours),
                "description": r.description,
            }
            for r in truth.injections
        ],
        "distractors": [
            {"kind": d.kind, "date": dates[d.day], "description": d.description} for d in truth.distractors
        ],
        "fluctuations": [
            {"kind": f.kind, "date": dates[f.day], "description": f.description} for f in truth.fluctuations
        ],
    }
