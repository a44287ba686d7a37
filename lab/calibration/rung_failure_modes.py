"""How many of a tier's incidents carry each failure mode a capable model showed on deep, measured from what was
injected (the generator's truth and the public data), on the tier's calibration seeds:

    uv run python -m lab.calibration.rung_failure_modes --difficulties deep,abyss --seeds 200 \
        --output lab/artifacts/rung_failure_modes.json
    uv run python -m lab.calibration.rung_failure_modes --render lab/artifacts/rung_failure_modes.json

An incident (one per first date: a multi-date incident counts once) carries:
- **edge of noise**: its whole-day metric stands in its own cuboid under the scan's bars (a robust z of 7 on a
  single date, 5 on the strongest date of a run: the bars a model used), so ranking by |z| does not put it on top;
  an incident whose evidence is a block of hours is not counted here (its hours show it);
- **context out of scope**: an experiment, a campaign or a single country's holiday is active on one of its dates
  and does not explain it (none does: an incident is never a context item's effect);
- **deeper than one level**: its cuboid names two fields or more (a version with its platform counts once), so a
  report one level coarser earns only part of the overlap credit; **diluted**: a whole-day incident no
  one-dimension view shows (`generation.dilution`);
- **concurrency in one cuboid**: another incident on one of its dates shares traffic with its cuboid;
- **weeks long**: it lasts seven dates or more, so a same-weekday median over the window absorbs part of it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from lab.agents.scan_analyst_reading import RUN_Z, SINGLE_DATE_Z
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.generation.dilution import CuboidIncident, cuboid_incidents, largest_one_dimension_z, stands_out
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.world.context import Campaign, Experiment, Holiday
from metric_tracker_rl.world.segments import Segment

WEEKS_LONG = 7
WHOLE_DAY = (0, 24)
MODES = (
    "edge_of_noise",
    "context_out_of_scope",
    "deeper_than_one_level",
    "diluted",
    "same_cuboid_concurrency",
    "weeks_long",
)
MODE_LABELS = {
    "edge_of_noise": "at the edge of the noise (under the scan's bars in its own cuboid)",
    "context_out_of_scope": "a context item on its dates that does not explain it",
    "deeper_than_one_level": "a root cause on two fields or more",
    "diluted": "all day, and shown by no one-dimension view",
    "same_cuboid_concurrency": "another incident on its date in a cuboid it shares traffic with",
    "weeks_long": f"lasting {WEEKS_LONG} dates or more",
}


@dataclass(frozen=True)
class IncidentModes:
    """The failure modes one incident carries."""

    seed: int
    family: str
    modes: frozenset[str]


def shares_traffic(a: Segment, b: Segment) -> bool:
    """Whether two cuboids hold a leaf in common: no field is named by both with different values."""
    named = a.normalised().named()
    return all(named.get(field, value) == value for field, value in b.normalised().named().items())


def depth(segment: Segment) -> int:
    """The fields a cuboid names, a version with its platform counting once."""
    named = segment.named()
    return len(named) - ("app_version" in named and "platform" in named)


def under_the_bars(episode: Episode, incident: CuboidIncident) -> bool:
    """Whether a whole-day incident's strongest date stands under the scan's bar in its own cuboid."""
    data = episode.public.segments
    assert data is not None
    strongest = max(largest_one_dimension_z(data, row, [incident.segment]) for row in incident.rows)
    return strongest < (SINGLE_DATE_Z if len(incident.rows) == 1 else RUN_Z)


def context_dates(episode: Episode) -> set[str]:
    """The dates an experiment, a campaign or a single country's holiday is active on."""
    data = episode.public.segments
    assert data is not None
    if data.context is None:
        return set()
    dates: set[str] = set()
    for row in (*data.context.experiments, *data.context.campaigns, *data.context.holidays):
        if isinstance(row, Holiday):
            if row.country is not None:
                dates.add(row.date)
        elif isinstance(row, (Experiment, Campaign)):
            dates.update(dates_between(row.start_date, row.end_date))
    return dates


def dates_between(start: str, end: str) -> list[str]:
    """Every ISO date from `start` to `end`, both included."""
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def incident_modes(seed: int, episode: Episode) -> list[IncidentModes]:
    """Each incident of the episode with the failure modes it carries."""
    data = episode.public.segments
    assert data is not None, "failure modes are measured on a segmented tier"
    incidents = cuboid_incidents(episode)
    busy = context_dates(episode)
    found = []
    for incident in incidents:
        dates = {row.date for row in incident.rows}
        family = incident.rows[0].anomaly_type
        modes = set()
        whole_day = incident.records[0].hours == WHOLE_DAY and incident.rows[0].entity_type in (
            "conversion_rate",
            "event_count",
        )
        if whole_day and under_the_bars(episode, incident):
            modes.add("edge_of_noise")
        if dates & busy:
            modes.add("context_out_of_scope")
        if depth(incident.segment) >= 2:
            modes.add("deeper_than_one_level")
            if whole_day and not stands_out(data, incident):
                modes.add("diluted")
        if any(
            other is not incident
            and dates & {row.date for row in other.rows}
            and shares_traffic(incident.segment, other.segment)
            for other in incidents
        ):
            modes.add("same_cuboid_concurrency")
        if len(dates) >= WEEKS_LONG:
            modes.add("weeks_long")
        found.append(IncidentModes(seed, family, frozenset(modes)))
    return found


def tier_modes(difficulty: str, seeds: int) -> dict[str, object]:
    """The shares of a tier's incidents (over its first `seeds` calibration episodes) carrying each mode."""
    incidents: list[IncidentModes] = []
    for offset in range(seeds):
        config = resolve_episode_config(**calibration_reset_kwargs(difficulty, offset))
        incidents += incident_modes(config.seed, build_episode(config))
    count = len(incidents)
    shares = {mode: sum(mode in i.modes for i in incidents) / max(count, 1) for mode in MODES}
    return {
        "episodes": seeds,
        "incidents": count,
        "shares": shares,
        "any": sum(bool(i.modes) for i in incidents) / max(count, 1),
    }


def render(results: dict[str, dict[str, object]]) -> str:
    """The markdown table: one row a mode, one column a tier."""
    tiers = list(results)
    lines = ["| failure mode | " + " | ".join(tiers) + " |", "| --- |" + " --- |" * len(tiers)]
    lines.append(
        "| incidents (episodes) | "
        + " | ".join(f"{results[t]['incidents']} ({results[t]['episodes']})" for t in tiers)
        + " |"
    )
    for mode in MODES:
        lines.append(
            f"| {MODE_LABELS[mode]} | " + " | ".join(f"{results[t]['shares'][mode]:.0%}" for t in tiers) + " |"
        )  # type: ignore[index]
    lines.append("| any of them | " + " | ".join(f"{results[t]['any']:.0%}" for t in tiers) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The share of a tier's incidents carrying each failure mode.")
    parser.add_argument("--difficulties", default="deep,abyss", help="segmented tiers, comma-separated")
    parser.add_argument("--seeds", type=int, default=200, help="calibration episodes per tier, from the first")
    parser.add_argument("--output", type=Path, default=None, help="write the results here (JSON)")
    parser.add_argument("--render", type=Path, default=None, help="print a results file's table, run nothing")
    args = parser.parse_args(None if argv is None else list(argv))
    if args.render is not None:
        print(render(json.loads(args.render.read_text())["tiers"]), end="")
        return
    results = {}
    for difficulty in filter(None, args.difficulties.split(",")):
        if difficulty not in TIERS:
            parser.error(f"unknown difficulty {difficulty!r}; choose from {', '.join(TIERS)}")
        results[difficulty] = tier_modes(difficulty, args.seeds)
        print(f"[{difficulty}] {results[difficulty]['incidents']} incidents", flush=True)
    if args.output is not None:
        args.output.write_text(json.dumps({"seeds": args.seeds, "tiers": results}, indent=1) + "\n")
    print(render(results), end="")


if __name__ == "__main__":
    main()
