"""Where the scan analyst loses its points at a difficulty, by failure mode: each episode is played as usual (the
agent reads only what a model reads), then its graded report is laid beside the episode's truth, which a debug
environment shows this measurement only.

    uv run python -m lab.calibration.scan_analyst_failures --difficulty deep --seeds 100 [--agent scan_analyst]

Every expected row the report did not earn in full, and every row it reported that no incident holds, gets one
failure mode:

- concurrency: a missed incident on a date where the report found another incident in an overlapping cuboid;
- context: a missed incident whose fall the agent left as a context item's (an experiment, a campaign) or whose
  date and cuboid an experiment or campaign covers; a false row where a benign context item sits (a campaign,
  a holiday, an experiment's intended effect);
- localisation: a row found on a cuboid other than the incident's (too coarse: it holds other traffic; too fine:
  it misses some of the incident's; off: both), and a missed date of a run found on another cuboid (a release's
  first dates, when its version was not pinned);
- family: an incident reported as another family (its side-effect key reported, its own missed);
- edge of noise: a missed incident whose fall the scan showed under the bar or the breakdown did not confirm, or
  never showed at all; a false row where nothing happened;
- benign look-alike: a false row where a benign change with no context item sits (a segment's demand swing or
  timing shift, a mix shift);
- other: anything else (values or severity off).

A row's lost points are its share of the episode's loss: an expected row's missing quality over the number of
expected rows, and a false row's share of the loss of precision.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import lab.agents.scan_analyst  # noqa: F401  (registers the scan analyst and its variations)
from lab.agents.registry import make_agent
from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

FIELDS = ("platform", "country", "app_version", "channel", "user_type")
CONTEXT_KINDS = ("campaign", "country_holiday", "experiment_effect")
FULL = 0.999  # a row's quality from which it counts as earned in full
RUN_DAYS = 7  # a missed date this close to a found date of the same step and cuboid belongs to that run


# The incident kind an injection's description names (the debug view's words), in the order they are tried.
KIND_WORDS = (
    ("release", "release_regression"),
    ("experiment", "experiment_breakage"),
    ("payment partner", "partner_payment_failure"),
    ("almost stops", "payment_failure"),
    ("bots", "country_bots"),
    ("outage", "segment_outage"),
    ("logged", "web_tracking_bug"),
    ("falls by", "level_shift"),
)


@dataclass
class Loss:
    mode: str
    points: float
    detail: str
    kind: str = ""  # the incident kind of a missed or partly earned row


def kind_of(row: dict[str, Any], injections: list[dict[str, Any]]) -> str:
    """The incident kind behind an expected row, from the injection of its date and entity."""
    for injection in injections:
        if injection["date"] == str(row["date"]) and injection["entity_name"] == row["entity_name"]:
            return next((kind for word, kind in KIND_WORDS if word in injection["description"]), "other")
    return "other"


def _segment(row: dict[str, Any]) -> dict[str, str]:
    return {name: str(row[name]) for name in FIELDS if row.get(name) is not None}


def _overlaps(first: dict[str, str], second: dict[str, str]) -> bool:
    return all(second.get(name, value) == value for name, value in first.items())


def _described_segment(description: str) -> dict[str, str]:
    """The segment a benign item's description names first (`country=BR, channel=paid_social: ...`)."""
    head = description.split(":")[0]
    return dict(part.strip().split("=", 1) for part in head.split(",") if "=" in part)


def _day(date: str) -> int:
    return dt.date.fromisoformat(date).toordinal()


def _covers(item: dict[str, Any], date: str, segment: dict[str, str]) -> bool:
    """Whether a benign item's dates (its date, or `from X to Y`) and segment reach a date and a segment."""
    span = re.search(r"from (\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d)", item["description"])
    first, last = span.groups() if span else (item["date"], item["date"])
    return first <= date <= last and _overlaps(_described_segment(item["description"]), segment)


def play_recorded(agent_name: str, reset_kwargs: dict[str, Any]) -> tuple[EpisodeSession, Any, list[Any]]:
    """One episode on a debug environment: the session, the agent (the scan analyst keeps notes of why it dropped
    each candidate; an agent without notes reads as one that never made a candidate) and the rows it submitted."""
    session = EpisodeSession(MetricTrackerRlEnvironment(debug=True))
    agent = make_agent(agent_name)
    view = session.reset(**reset_kwargs)
    agent.begin(view)
    submitted: list[Any] = []
    while (action := agent.act(view)) is not None and not session.done:
        if action.classifications is not None:
            submitted = list(action.classifications)
        view = session.step(action).seen
    return session, agent, submitted


def losses(session: EpisodeSession, agent: Any, submitted: list[Any]) -> list[Loss]:
    """Every row that cost points, with its failure mode and its share of the episode's loss."""
    observation = session.observation
    debug, comparison = observation.debug or {}, observation.comparison or {"rows": [], "missed": []}
    expected = debug.get("expected_rows", [])
    if not expected:
        return [
            Loss("edge of noise", (1.0 - session.score) / max(len(submitted), 1), "a row on a null episode")
            for _ in submitted
        ]
    verdicts = {entry["row_index"]: entry for entry in comparison["rows"]}
    rows = [
        (row.model_dump() if hasattr(row, "model_dump") else dict(row), verdicts.get(i, {}))
        for i, row in enumerate(submitted)
    ]
    matched = [(row, verdict) for row, verdict in rows if verdict.get("verdict") == "matched"]
    false = [(row, verdict) for row, verdict in rows if verdict.get("verdict") in ("not_expected", "side_effect")]
    recall = sum(float(verdict.get("quality") or 0.0) for _, verdict in matched) / len(expected)
    precision_loss = max(recall - session.score, 0.0)
    found = [(str(row["date"]), _segment(row), row["entity_name"]) for row, _ in matched]
    benign = debug.get("fluctuations", []) + debug.get("distractors", [])
    injections = debug.get("injections", [])
    out = [
        _partial(row, verdict, len(expected)) for row, verdict in matched if float(verdict.get("quality") or 0.0) < FULL
    ]
    for loss, (row, _) in zip(out, [(r, v) for r, v in matched if float(v.get("quality") or 0.0) < FULL], strict=True):
        loss.kind = kind_of(row, injections)
    for row in comparison["missed"]:
        out.append(_missed(row, found, getattr(agent, "notes", []), benign, false, len(expected)))
        out[-1].kind = kind_of(row, injections)
    out += [_false(row, verdict, benign, precision_loss / max(len(false), 1)) for row, verdict in false]
    return out


def _partial(row: dict[str, Any], verdict: dict[str, Any], expected: int) -> Loss:
    points = (1.0 - float(verdict.get("quality") or 0.0)) / expected
    coverage, purity = float(verdict.get("coverage") or 1.0), float(verdict.get("purity") or 1.0)
    if min(coverage, purity) < FULL:
        shape = "too coarse" if coverage >= FULL else "too fine" if purity >= FULL else "off"
        return Loss("localisation", points, f"{verdict['key']} {shape} ({_segment(row)})")
    return Loss("other", points, f"{verdict['key']} values or family off")


def _missed(
    row: dict[str, Any],
    found: list[tuple[str, dict[str, str], str]],
    notes: list[dict[str, Any]],
    benign: list[dict[str, Any]],
    false: list[Any],
    expected: int,
) -> Loss:
    date, segment, step = str(row["date"]), _segment(row), row["entity_name"]
    key = f"{date}|{row['entity_type']}|{step} {segment}"
    seen = [
        note for note in notes if note["date"] == date and note["step"] == step and _overlaps(note["cuboid"], segment)
    ]
    reasons = {note["reason"] for note in seen}
    why = f" ({', '.join(sorted(reasons)) or 'never a candidate'})"
    if any(day == date and _overlaps(other, segment) for day, other, _ in found):
        return Loss("concurrency", 1.0 / expected, key + why)
    if any(
        other_step == step and _overlaps(other, segment) and abs(_day(day) - _day(date)) <= RUN_DAYS
        for day, other, other_step in found
    ):
        return Loss("localisation", 1.0 / expected, key + " (a date of a run found on another cuboid)" + why)
    if any(f_row["date"] == date and verdict.get("verdict") == "side_effect" for f_row, verdict in false):
        return Loss("family", 1.0 / expected, key)
    covered = any(item["kind"] in ("campaign", "experiment_effect") and _covers(item, date, segment) for item in benign)
    if "context" in reasons or (
        "side effect" not in reasons
        and covered
        and row["entity_type"] == "conversion_rate"
        and not reasons - {"context"}
    ):
        return Loss("context", 1.0 / expected, key)
    return Loss("edge of noise", 1.0 / expected, key + why)


def _false(row: dict[str, Any], verdict: dict[str, Any], benign: list[dict[str, Any]], points: float) -> Loss:
    key = f"{verdict.get('key')} {_segment(row)}"
    if verdict.get("verdict") == "side_effect":
        return Loss("family", points, key + " (a side-effect key)")
    near = [item for item in benign if _covers(item, str(row["date"]), _segment(row))]
    if any(item["kind"] in CONTEXT_KINDS for item in near):
        return Loss("context", points, key + " (a context item's effect)")
    if near:
        return Loss("benign look-alike", points, f"{key} ({near[0]['kind']})")
    return Loss("edge of noise", points, key)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--difficulty", default="deep")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--agent", default="scan_analyst")
    parser.add_argument("--rows", action="store_true", help="list every losing row")
    args = parser.parse_args(argv)
    counts: Counter[str] = Counter()
    kinds: Counter[tuple[str, str]] = Counter()
    points: dict[str, float] = defaultdict(float)
    scores = []
    for offset in range(args.seeds):
        session, agent, submitted = play_recorded(args.agent, calibration_reset_kwargs(args.difficulty, offset))
        scores.append(session.score)
        for loss in losses(session, agent, submitted):
            counts[loss.mode] += 1
            points[loss.mode] += loss.points
            kinds[(loss.kind or "(a false row)", loss.mode)] += 1
            if args.rows:
                print(
                    f"{offset:>3} {session.score:.3f} {loss.mode:<17} {loss.points:.3f} {loss.kind} {loss.detail}",
                    flush=True,
                )
    lost = sum(1 - score for score in scores)
    print(
        f"{args.agent} at {args.difficulty}: {len(scores)} episodes, mean {sum(scores) / len(scores):.3f}, "
        f"points lost {lost:.2f}"
    )
    print("| failure mode | rows | points lost | share of the loss |\n| --- | --- | --- | --- |")
    for mode, count in counts.most_common():
        print(f"| {mode} | {count} | {points[mode]:.2f} | {points[mode] / lost:.0%} |")
    print("\n| incident kind | failure mode | rows |\n| --- | --- | --- |")
    for (kind, mode), count in sorted(kinds.items(), key=lambda item: (item[0][0], -item[1])):
        print(f"| {kind} | {mode} | {count} |")


if __name__ == "__main__":
    main()
