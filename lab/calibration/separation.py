"""The audit's separation table: per mechanism and per interaction, the expected rows of a capable model's audit
episodes and the share its reports held (by key: date, entity type, entity name), beside the expert's and the
generic auditor's recall in the kept calibration (lab/artifacts/audit_calibration.json, both splits' untuned
seeds); the gap (expert - model); and a proposed mix of mechanisms drawn where the two part. Written to
lab/artifacts/audit_separation.json; lab/docs/audit.md shows it (a block of lab/docs_blocks.py).

    uv run python -m lab.calibration.separation           # print the table (exit 1 if the artifact differs)
    uv run python -m lab.calibration.separation --write   # write the artifact
    nice -n 5 uv run python -m lab.calibration.separation --write --play   # the agents on the model's episodes too
    uv run python -m lab.docs_blocks --write              # then the page's block

The model's episodes are the audit's transcript sets (SETS). A set whose episodes this tree still builds (its
recorded fingerprints are today's) has its worlds built here; a set whose worlds moved since has them from
lab/artifacts/audit_separation_worlds.json, rebuilt in a checkout of its recording commit by
lab/calibration/separation_worlds.py. Either way each episode's expected rows must be the grader's at the time: the
count the recorded grading message gives ("X of Y expected row(s) found") is checked against the rebuilt rows.

Beside the calibration's figures, the expert and the generic auditor play the model's own episodes where this tree
builds them (`--play`; a run without it keeps the kept artifact's plays, and refuses them where an episode's rows
moved): the same rows, paired, and the only figures for a three-field incident, which the calibration does not
record.

The proposed weights are each mechanism's share of an episode's expected rows. With E the expert's recall (the
calibration's, both splits pooled), the model's k held of n rows on the mechanism, and P the model's recall over
every row of its episodes:

    M     = (k + PRIOR_ROWS * P) / (n + PRIOR_ROWS)    # the model's recall, drawn toward P where rows are few
    gap'  = max(0, E - M)                              # M = P on a mechanism no model episode held
    raw   = FLOOR + gap'                               # every mechanism is still drawn
    share = raw / sum(raw), then any share above CAP set to CAP and the rest scaled up to fill (repeated)

A mechanism with no expert figure (no calibration rows) gets gap' = 0. The generic auditor's recall is shown, not
weighed: on the mechanisms both played it misses many the model finds (the artifact's
`generic_misses_model_finds` lists them), so it is no stand-in for the model's. The audit's version 2 draws by
the weights this table proposed when its mix was set (metric_tracker_rl/catalog/audit_weights.py's ROW_SHARES, part
of what the version is; lab/calibration/audit_mix_shares.py measures the mix as drawn). The table's weights move as
the calibration it reads is played again: they are then a proposal for a next version.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import sys
from collections.abc import Iterable
from typing import Any

from lab.calibration.audit_calibration import ARTIFACT as CALIBRATION
from lab.calibration.calibrate import markdown_table
from lab.calibration.interface import record_episode
from lab.calibration.outputs import KEPT
from lab.calibration.replay import HISTORY, current_fingerprints, is_earlier_version, load, recorded_on
from lab.calibration.separation_worlds import RECORDS, folder_facts, reset_settings
from metric_tracker_rl.catalog.published import row_key
from metric_tracker_rl.catalog.tiers import AUDIT, AuditMix
from metric_tracker_rl.generation.warehouse.truth import DATA_QUALITY

ARTIFACT = KEPT / "audit_separation.json"
KEPT_WORLDS = KEPT / "audit_separation_worlds.json"  # the worlds of sets whose episodes moved since, by commit
SETS = ("32cc005", "fcf684c")  # the audit's transcript sets, under model_transcripts/history/
EXPERT, GENERIC = "audit_expert", "generic_auditor"
AGENTS = (EXPERT, GENERIC)
CALIBRATION_EPISODES = 24  # per split: the kept calibration's untuned seeds (its `seeds` ranges say so too)
FLOOR, CAP, PRIOR_ROWS = 0.1, 0.25, 3.0
# The defects whose edit writes a side table, where their trace is read beside the events: currency_rates' rows
# (the rates provider's) or tracking_changelog's entry (a tracking deploy's). The lab's test holds the list to
# what each mechanism edits.
SIDE_TABLE_DEFECTS = ("inverted_rate", "missing_rate_rows", "tracking_stopped")
INTERACTIONS = {
    "three_field_incident": "an incident's row in a segment naming three fields",
    "defect_on_incident": "a data defect on an incident's date, in a segment sharing its traffic",
    "one_segment_two_incidents": "two incidents in one segment on one date",
    "side_table_defect": "a defect whose trace is in a side table (" + ", ".join(SIDE_TABLE_DEFECTS) + ")",
}
BUILT_HERE = "built on this tree, where its episodes reproduce"
GRADED = re.compile(r"(\d+) of (\d+) expected row\(s\) found")


def meet(one: dict[str, str], other: dict[str, str]) -> bool:
    """Whether two segments (their named fields, normalised) share cells: no field both name differs."""
    return all(other[name] == value for name, value in one.items() if name in other)


def interactions(row: dict[str, Any], world: dict[str, Any]) -> list[str]:
    """The interactions (INTERACTIONS) an expected row is part of, read from what was injected (the calibration's
    rule for the two it records: audit_calibration.interactions_of)."""
    day, incidents, defects = row["day"], world["incidents"], world["defects"]
    if row["family"] == DATA_QUALITY:
        defect = next(d for d in defects if d["kind"] == row["mechanism"] and day in d["days"])
        found = {
            "defect_on_incident": any(i["day"] == day and meet(i["segment"], defect["segment"]) for i in incidents),
            "side_table_defect": row["mechanism"] in SIDE_TABLE_DEFECTS,
        }
    else:
        mine = [i for i in incidents if i["kind"] == row["mechanism"] and i["day"] == day]
        found = {
            "three_field_incident": len(row["segment"]) >= 3,
            "defect_on_incident": any(
                day in d["days"] and meet(i["segment"], d["segment"]) for d in defects for i in mine
            ),
            "one_segment_two_incidents": sum(i["day"] == day and i["segment"] == row["segment"] for i in incidents)
            >= 2,
        }
    return [name for name in INTERACTIONS if found.get(name)]


def submitted_keys(transcript: dict[str, Any]) -> tuple[set[str], tuple[int, int] | None]:
    """The keys of the rows the transcript's last report held, and the grading message's (found, expected)."""
    reports = [call for call in transcript["calls"] if call["tool"] == "submit_report"]
    if not reports:
        return set(), None
    rows = reports[-1]["arguments"].get("rows", [])
    graded = GRADED.search(reports[-1]["text"])
    keys = {row_key(r["date"], r["entity_type"], r["entity_name"]) for r in rows}
    return keys, None if graded is None else (int(graded[1]), int(graded[2]))


def set_worlds(commit: str) -> tuple[dict[str, dict[str, Any]], str]:
    """A set's worlds by transcript file, and where they come from: built here, or kept from its commit."""
    folder = HISTORY / commit
    if not is_earlier_version("audit", recorded_on(folder), current_fingerprints()):
        return folder_facts(folder), BUILT_HERE
    kept = json.loads(KEPT_WORLDS.read_text(encoding="utf-8")).get(commit)
    if kept is None:
        raise SystemExit(f"{commit}'s audit worlds moved and {KEPT_WORLDS.name} keeps none: rebuild them there")
    return kept["episodes"], f"rebuilt at {commit}, as they moved since"


def episode_entry(commit: str, name: str, world: dict[str, Any], here: bool = False) -> dict[str, Any]:
    """One model episode: its expected rows with mechanism, interactions and whether the report held the key;
    `here`: whether this tree builds its world (so the agents can play it)."""
    transcript = load(HISTORY / commit / name)
    keys, graded = submitted_keys(transcript)
    rows = [[r["key"], r["mechanism"], interactions(r, world), r["key"] in keys] for r in world["rows"]]
    found = sum(held for *_, held in rows)
    if graded is not None and graded != (found, len(rows)):
        raise ValueError(f"{commit}/{name}: rebuilt {found} of {len(rows)} rows, the grader said {graded}")
    return {
        "set": commit,
        "file": name,
        "seed": transcript["seed"],
        "settings": reset_settings(transcript),
        "here": here,
        "score": transcript["score"],
        "rows": rows,
    }


def model_episodes() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every audit transcript of SETS as an episode entry, and where each set's worlds came from."""
    entries, sources = [], {}
    for commit in SETS:
        worlds, sources[commit] = set_worlds(commit)
        here = sources[commit] == BUILT_HERE
        names = sorted(p.name for p in (HISTORY / commit).glob("audit-*.json") if p.name not in RECORDS)
        if sorted(worlds) != names:
            raise ValueError(f"{commit}: worlds for {sorted(worlds)}, transcripts {names}")
        entries += [episode_entry(commit, name, worlds[name], here) for name in names]
    return entries, sources


def play(job: tuple[str, int, dict[str, Any]]) -> list[str]:
    """The keys of the rows an agent's report held on an audit episode, played in this process."""
    agent, seed, settings = job
    run = record_episode(agent, {"difficulty": "audit", "seed": seed, **settings})
    rows = run.graded.submitted_rows if run.graded is not None else []
    return sorted({row_key(r.date, r.entity_type, r.entity_name) for r in rows})


def agent_plays(episodes: list[dict[str, Any]], kept_episodes: list[dict[str, Any]] | None, workers: int) -> None:
    """Give each episode this tree builds its `agents`: per agent, the expected keys its report held, played now
    (`kept_episodes` None) or carried from the kept artifact, whose episode must expect the same keys."""
    mine = [e for e in episodes if e["here"]]
    if kept_episodes is None:
        jobs = [(agent, e["seed"], e["settings"]) for e in mine for agent in AGENTS]
        with multiprocessing.Pool(workers) as pool:
            submitted = pool.map(play, jobs)
        held = {(agent, seed): set(keys) for (agent, seed, _), keys in zip(jobs, submitted, strict=True)}
        for episode in mine:
            expected = {row[0] for row in episode["rows"]}
            episode["agents"] = {a: sorted(expected & held[a, episode["seed"]]) for a in AGENTS}
        return
    kept = {(e["set"], e["file"]): e for e in kept_episodes}
    for episode in mine:
        before = kept.get((episode["set"], episode["file"]))
        if (
            before is None
            or "agents" not in before
            or [r[0] for r in before["rows"]] != [r[0] for r in episode["rows"]]
        ):
            raise SystemExit(f"{episode['set']}/{episode['file']}: no kept plays of its rows; run with --play")
        episode["agents"] = before["agents"]


def same_episodes(episodes: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, int]]]:
    """Per mechanism and per interaction, over the episodes the agents played: the rows, those the model's, the
    expert's and the generic auditor's reports held, and the episodes."""
    tally: dict[str, dict[str, dict[str, Any]]] = {"mechanisms": {}, "interactions": {}}
    for episode in (e for e in episodes if "agents" in e):
        played = {agent: set(keys) for agent, keys in episode["agents"].items()}
        for key, mechanism, together, held in episode["rows"]:
            for table, name in [("mechanisms", mechanism), *(("interactions", n) for n in together)]:
                entry = tally[table].setdefault(name, {"rows": 0, "model": 0, **dict.fromkeys(AGENTS, 0), "in": set()})
                entry["rows"] += 1
                entry["model"] += held
                for agent in AGENTS:
                    entry[agent] += key in played[agent]
                entry["in"].add(episode["file"])
    return {
        table: {
            name: {**{k: v for k, v in e.items() if k != "in"}, "episodes": len(e["in"])} for name, e in entries.items()
        }
        for table, entries in tally.items()
    }


def model_recall(episodes: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, int]]]:
    """Per mechanism and per interaction: the model's expected rows, those held, and the episodes holding them."""
    tally: dict[str, dict[str, dict[str, Any]]] = {"mechanisms": {}, "interactions": {}}
    for episode in episodes:
        for _key, mechanism, together, held in episode["rows"]:
            for table, name in [("mechanisms", mechanism), *(("interactions", n) for n in together)]:
                entry = tally[table].setdefault(name, {"rows": 0, "held": 0, "episodes": set()})
                entry["rows"] += 1
                entry["held"] += held
                entry["episodes"].add((episode["set"], episode["file"]))
    return {
        table: {name: {**e, "episodes": len(e["episodes"])} for name, e in sorted(entries.items())}
        for table, entries in tally.items()
    }


def pooled(stats: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The calibration's entries of one name over both splits: rows, episodes, and each agent's rows held."""
    out: dict[str, Any] = {"rows": 0, "episodes": 0, EXPERT: 0, GENERIC: 0}
    for entry in stats:
        out["rows"] += entry["rows"]
        out["episodes"] += round(entry["episode_share"] * CALIBRATION_EPISODES)
        for agent in (EXPERT, GENERIC):
            out[agent] += round(entry[agent] * entry["rows"])
    return out


def calibration_recall(calibration: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """The kept calibration's rows held per mechanism and per interaction, both splits pooled; a side-table
    defect's are its mechanisms'; three-field incidents it does not record."""
    splits = calibration["splits"].values()
    names = sorted({m for split in splits for m in split["mechanisms"]})
    mechanisms = {m: pooled(s["mechanisms"][m] for s in splits if m in s["mechanisms"]) for m in names}
    recorded = sorted({n for split in splits for n in split.get("interactions", {})})
    together = {n: pooled(s["interactions"][n] for s in splits if n in s.get("interactions", {})) for n in recorded}
    side = [mechanisms[m] for m in SIDE_TABLE_DEFECTS if m in mechanisms]
    together["side_table_defect"] = {k: sum(e[k] for e in side) for k in ("rows", "episodes", EXPERT, GENERIC)}
    return {"mechanisms": mechanisms, "interactions": together}


def recall(held: int, rows: int) -> float | None:
    return round(held / rows, 3) if rows else None


def figures(model: dict[str, Any] | None, calibrated: dict[str, Any] | None) -> dict[str, Any]:
    """One line of the table: the model's rows, held and episodes, the expert's and the generic auditor's rows held
    of the calibration's, each recall, and the gap."""
    model = model or {"rows": 0, "held": 0, "episodes": 0}
    calibrated = calibrated or {"rows": 0, "episodes": 0, EXPERT: 0, GENERIC: 0}
    line = {
        "model_rows": model["rows"],
        "model_held": model["held"],
        "model_episodes": model["episodes"],
        "model_recall": recall(model["held"], model["rows"]),
        "calibration_rows": calibrated["rows"],
        "calibration_episodes": calibrated["episodes"],
        "expert_held": calibrated[EXPERT],
        "expert_recall": recall(calibrated[EXPERT], calibrated["rows"]),
        "generic_held": calibrated[GENERIC],
        "generic_recall": recall(calibrated[GENERIC], calibrated["rows"]),
    }
    both = line["expert_recall"] is not None and line["model_recall"] is not None
    return {**line, "gap": round(line["expert_recall"] - line["model_recall"], 3) if both else None}


def audit_mechanisms() -> tuple[str, ...]:
    """Every mechanism the latest audit draws rows from: its incident kinds and its defects."""
    mix = AUDIT.segmented
    assert isinstance(mix, AuditMix)
    return tuple(sorted({*mix.incident_kinds, *mix.defects}))


def capped(raw: dict[str, float], cap: float = CAP) -> dict[str, float]:
    """`raw` as shares of their sum, none above `cap`: a share past it is set to it and the others scaled up to
    fill the rest, until none passes (cap * len(raw) must reach 1)."""
    if cap * len(raw) < 1:
        raise ValueError(f"{len(raw)} shares cannot each stay at or below {cap}")
    fixed: dict[str, float] = {}
    while True:
        free = {name: value for name, value in raw.items() if name not in fixed}
        left, total = 1 - sum(fixed.values()), sum(free.values())
        shares = {name: left * value / total for name, value in free.items()}
        over = {name for name, share in shares.items() if share > cap}
        if not over:
            return {**fixed, **shares}
        fixed.update(dict.fromkeys(over, cap))


def weights(mechanisms: dict[str, dict[str, Any]], prior: float) -> dict[str, dict[str, float | None]]:
    """The proposed share of rows per mechanism (the module's formula, `prior` its P), with the model-side recall
    and the gap it used."""
    used: dict[str, dict[str, float | None]] = {}
    for name, line in mechanisms.items():
        side = (line["model_held"] + PRIOR_ROWS * prior) / (line["model_rows"] + PRIOR_ROWS)
        expert = line["expert_recall"]
        used[name] = {
            "model_side": round(side, 3),
            "gap_used": 0.0 if expert is None else round(max(0, expert - side), 3),
        }
    shares = capped({name: FLOOR + float(u["gap_used"] or 0.0) for name, u in used.items()})
    return {name: {**used[name], "weight": round(shares[name], 4)} for name in sorted(used)}


def generic_misses(mechanisms: dict[str, dict[str, Any]]) -> list[str]:
    """The mechanisms the model found at 0.9 or more of its rows and the generic auditor at 0.1 or less of its own:
    where the generic auditor is no stand-in for a model."""
    return [
        name
        for name, line in mechanisms.items()
        if line["model_recall"] is not None
        and line["generic_recall"] is not None
        and line["model_recall"] >= 0.9
        and line["generic_recall"] <= 0.1
    ]


def render(calibration: dict[str, Any] | None = None, play: bool = False, workers: int = 2) -> dict[str, Any]:
    """The artifact: the sets and where their worlds came from, the calibration's seeds, the table per mechanism
    and per interaction (with the agents on the model's episodes: played when `play`, else kept), the proposed
    weights, and each model episode's rows."""
    calibration = calibration or json.loads(CALIBRATION.read_text(encoding="utf-8"))
    episodes, sources = model_episodes()
    agent_plays(episodes, None if play else kept()["episodes"], workers)
    paired = same_episodes(episodes)
    model, calibrated = model_recall(episodes), calibration_recall(calibration)
    names = sorted({*audit_mechanisms(), *model["mechanisms"], *calibrated["mechanisms"]})
    mechanisms = {
        m: {**figures(model["mechanisms"].get(m), calibrated["mechanisms"].get(m)), "same": paired["mechanisms"].get(m)}
        for m in names
    }
    together = {
        n: {
            **figures(model["interactions"].get(n), calibrated["interactions"].get(n)),
            "same": paired["interactions"].get(n),
        }
        for n in INTERACTIONS
    }
    rows = [held for episode in episodes for *_, held in episode["rows"]]
    prior = round(sum(rows) / len(rows), 3)
    return {
        "sets": {
            commit: {"episodes": sum(e["set"] == commit for e in episodes), "worlds": sources[commit]}
            for commit in SETS
        },
        "calibration_seeds": calibration["seeds"],
        "formula": {"floor": FLOOR, "cap": CAP, "prior_rows": PRIOR_ROWS},
        "mechanisms": mechanisms,
        "interactions": together,
        "model_recall_overall": prior,
        "generic_misses_model_finds": generic_misses(mechanisms),
        "weights": weights(mechanisms, prior),
        "episodes": episodes,
    }


def kept() -> dict[str, Any]:
    return json.loads(ARTIFACT.read_text(encoding="utf-8"))


def _count(held: int, rows: int) -> str:
    return f"{held}/{rows} ({held / rows:.2f})" if rows else "-"


def _same(same: dict[str, int] | None) -> str:
    """The paired cell: the model's, the expert's and the generic auditor's rows held of the same rows."""
    if not same:
        return "-"
    rows = same["rows"]
    return f"{same['model']}, {same[EXPERT]}, {same[GENERIC]} of {rows} ({same['episodes']} ep.)"


def _line(name: str, line: dict[str, Any], weight: str) -> list[str]:
    gap = "-" if line["gap"] is None else f"{round(line['gap'], 2) + 0.0:+.2f}"
    model, calibrated = line["model_rows"], line["calibration_rows"]
    cells = [
        name,
        _count(line["model_held"], model) + (f", {line['model_episodes']} ep." if model else ""),
        _count(line["expert_held"], calibrated) + (f", {line['calibration_episodes']} ep." if calibrated else ""),
        _count(line["generic_held"], calibrated),
        gap,
        _same(line.get("same")),
    ]
    return cells + ([weight] if weight else [])


def table(separation: dict[str, Any] | None = None) -> str:
    """The page's block: per mechanism (widest gap first) and per interaction, the model's rows held of its
    episodes' expected rows, the expert's and the generic auditor's of the calibration's, the gap and the
    proposed share of rows."""
    separation = separation or kept()
    lines = separation["mechanisms"]
    order = sorted(lines, key=lambda m: (-(lines[m]["gap"] if lines[m]["gap"] is not None else -2), m))
    header = [
        "mechanism",
        "model: held/rows, episodes",
        "expert (calibration)",
        "generic auditor (calibration)",
        "gap",
        "model, expert, generic on the same rows",
        "weight",
    ]
    rows = [_line(m, lines[m], f"{separation['weights'][m]['weight']:.3f}") for m in order]
    together = [_line(INTERACTIONS[n], line, "") for n, line in separation["interactions"].items()]
    sets = ", ".join(f"`{c}` ({s['episodes']} episodes; worlds {s['worlds']})" for c, s in separation["sets"].items())
    seeds = separation["calibration_seeds"]
    plays = sum("agents" in episode for episode in separation["episodes"])
    note = (
        f"The model's episodes: {sets}. The expert's and the generic auditor's: the kept calibration's seeds "
        f"(eval {seeds['eval'][0]}-{seeds['eval'][1]}, train {seeds['train'][0]}-{seeds['train'][1]}), its "
        "episodes holding the mechanism. The same rows: the expert and the generic auditor played on the model's "
        f"episodes this tree builds ({plays} episodes). `uv run python -m lab.calibration.separation`."
    )
    interaction_table = markdown_table(["interaction", *header[1:6]], together)
    return "\n\n".join([markdown_table(header, rows), interaction_table, note])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {ARTIFACT.relative_to(KEPT.parents[1])}")
    parser.add_argument("--play", action="store_true", help="play the expert and the generic auditor on the episodes")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    separation = render(play=args.play, workers=args.workers)
    if args.write:
        ARTIFACT.write_text(json.dumps(separation, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {ARTIFACT.relative_to(KEPT.parents[1])}")
        return 0
    print(table(separation))
    return 0 if separation == kept() else 1


if __name__ == "__main__":
    sys.exit(main())
