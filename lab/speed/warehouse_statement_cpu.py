"""Where a model's statement over the warehouse's events spends its time, in CPU time (a loaded machine stretches
wall time, not the work): every query statement of a kept example's plays, on that episode's tables as a reset
serves them (the events packed, unpacked by the engine on first use), run by the SQL engine in this process.

    uv run python -m lab.speed.warehouse_statement_cpu --example lab/artifacts/warehouse_example.json --rounds 3

It reports, by role (the model-like analyst, the expert), each statement's CPU time when first sent (its checks
and its run) and when sent again (its run), the median over the statements; the CPU time DuckDB's profiler gives
each kind of operator over all the statements; the same statements over other forms of the events table (its
dictionaries decoded, one Arrow chunk, a DuckDB table), timed in turn with the served form in each round so that
the machine's load weighs on each alike; the statements on thinner events, to show what the time scales with (the
events less every screen_view and user_engagement, which no rule reads; a share of the users, as a smaller sample
would hold); and the statements on two engine threads: their CPU time, and how many give exactly the rows one
thread gives. Progress goes to stderr; the figures to stdout as JSON.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import WAREHOUSE
from metric_tracker_rl.generation.warehouse.episode import build_warehouse_episode
from metric_tracker_rl.sql.columns import PackedTable, ServedTable
from metric_tracker_rl.sql.engine import ROW_CAP, EpisodeTables, open_database

EXAMPLE = Path(__file__).resolve().parents[2] / "lab" / "artifacts" / "warehouse_example.json"
ROLES = ("model_like", "expert")
UNREAD_EVENTS = ("screen_view", "user_engagement")  # everyday events no rule of the metrics layer reads
USER_SHARES = (0.75, 0.5)  # thinner samples: the users kept, every event of each


def progress(message: str) -> None:
    print(f"[warehouse_statement_cpu] {message}", file=sys.stderr, flush=True)


def served_tables(seed: int) -> dict[str, ServedTable]:
    """The tables an open episode of the warehouse holds, as its reset builds them."""
    episode = build_warehouse_episode(WAREHOUSE, resolve_episode_config(seed=seed, difficulty="warehouse"))
    return episode.public.sql_tables()


def cpu_ms(run: Any) -> float:
    start = time.process_time()
    run()
    return 1000 * (time.process_time() - start)


def capped(sql: str) -> str:
    """The statement as the engine runs it (EpisodeTables._execute)."""
    return f"SELECT * FROM (\n{sql}\n) LIMIT {ROW_CAP + 1}"


def decoded(array: Any) -> Any:
    """An Arrow array with every dictionary (also inside structs and lists) replaced by its values."""
    kind = array.type
    mask = array.is_null() if array.null_count else None
    if pa.types.is_dictionary(kind):
        return array.cast(kind.value_type)
    if pa.types.is_struct(kind):
        return pa.StructArray.from_arrays(
            [decoded(array.field(i)) for i in range(kind.num_fields)], names=[field.name for field in kind], mask=mask
        )
    if pa.types.is_list(kind):
        return pa.ListArray.from_arrays(array.offsets, decoded(array.flatten()), mask=mask)
    return array


def other_form(tables: dict[str, ServedTable], form: str) -> EpisodeTables:
    """The episode's tables with the events in another form (the other tables as served)."""
    episode = EpisodeTables(open_database(), tables)
    episode.view()
    packed = tables["events"]
    assert isinstance(packed, PackedTable)
    events = packed.arrow()
    episode.con.unregister("events")
    if form == "decoded":
        episode.con.register(
            "events",
            episode.con.from_arrow(
                pa.table({name: decoded(events.column(name).combine_chunks()) for name in events.column_names})
            ),
        )
    elif form == "one_chunk":
        episode.con.register("events", episode.con.from_arrow(events.combine_chunks()))
    elif form == "no_unread_events":
        names = pc.cast(events.column("event_name"), pa.string())
        episode.con.register(
            "events", episode.con.from_arrow(events.filter(pc.invert(pc.is_in(names, pa.array(UNREAD_EVENTS)))))
        )
    elif form.startswith("users_"):  # every event of the users whose index falls in the share
        users = events.column("user_pseudo_id").combine_chunks()
        kept = pc.less(
            pc.bit_wise_and(pc.cast(users.indices, pa.int64()), 1023),
            int(1024 * int(form.removeprefix("users_")) / 100),
        )
        episode.con.register("events", episode.con.from_arrow(events.filter(kept)))
    else:  # a DuckDB table of the episode's own connection, read through a view
        episode.con.register("events_arrow", events)
        episode.con.execute("CREATE TEMP TABLE events_stored AS SELECT * FROM events_arrow")
        episode.con.unregister("events_arrow")
        episode.con.execute("CREATE TEMP VIEW events AS SELECT * FROM events_stored")
    return episode


def served_times(tables: dict[str, ServedTable], statements: list[str]) -> dict[str, list[float]]:
    """Each statement's CPU time when first sent (checks and run) and sent again (run), on a fresh episode."""
    episode = EpisodeTables(open_database(), tables)
    first = [cpu_ms(lambda sql=sql: episode.run(sql, 0, 50)) for sql in statements]
    again = [cpu_ms(lambda sql=sql: episode.run(sql, 0, 50)) for sql in statements]
    episode.close()
    return {"first_ms": first, "again_ms": again}


def form_times(tables: dict[str, ServedTable], statements: list[str], rounds: int) -> dict[str, list[float]]:
    """Each statement's median CPU time over `rounds` in each form, the forms in turn within a round."""
    forms = {"served": EpisodeTables(open_database(), tables)}
    forms["served"].view()
    for form in (
        "decoded",
        "one_chunk",
        "duckdb_table",
        "no_unread_events",
        *(f"users_{round(100 * share)}" for share in USER_SHARES),
    ):
        forms[form] = other_form(tables, form)
    progress(
        "events rows by form: "
        + json.dumps(
            {form: episode.con.execute("SELECT count(*) FROM events").fetchone()[0] for form, episode in forms.items()}
        )
    )
    for episode in forms.values():  # warm-up: plans and allocator
        for sql in statements:
            episode.con.execute(capped(sql)).fetchall()
    times: dict[str, list[list[float]]] = {form: [[] for _ in statements] for form in forms}
    for round_index in range(rounds):
        progress(f"forms: round {round_index + 1} of {rounds}")
        for index, sql in enumerate(statements):
            for form, episode in forms.items():
                times[form][index].append(cpu_ms(lambda e=episode, s=sql: e.con.execute(capped(s)).fetchall()))
    for episode in forms.values():
        episode.close()
    return {form: [float(np.median(runs)) for runs in per_statement] for form, per_statement in times.items()}


def operator_ms(tables: dict[str, ServedTable], statements: list[str]) -> dict[str, float]:
    """CPU time by operator kind over all the statements, from DuckDB's profiler (which itself adds time)."""
    episode = EpisodeTables(open_database(), tables)
    episode.view()
    totals: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as directory:
        output = os.path.join(directory, "profile.json")
        con = duckdb.connect(":memory:", config={"threads": 1})  # a connection whose configuration is not locked
        for name, table in tables.items():  # the packed tables as served, the others as their views read
            con.register(
                name,
                table.arrow()
                if isinstance(table, PackedTable)
                else episode.con.sql(f"SELECT * FROM {name}").to_arrow_table(),
            )
        con.execute("PRAGMA enable_profiling = 'json'")
        con.execute(f"PRAGMA profiling_output = '{output}'")
        for sql in statements:
            con.execute(sql).fetchall()
            profile = json.loads(Path(output).read_text())
            stack = list(profile["operator"])
            while stack:
                node = stack.pop()
                totals[node["type"]] += 1000 * node.get("timing", 0.0)
                stack.extend(node.get("children", []))
            totals["(all, profiled)"] += 1000 * profile["query"]["cpu_time"]
    episode.close()
    return {kind: round(ms, 1) for kind, ms in totals.most_common()}


def threads_check(tables: dict[str, ServedTable], statements: list[str]) -> dict[str, Any]:
    """The statements on one and on two threads: CPU time, and how many give exactly the same rows."""
    rows: dict[int, list[Any]] = {}
    cpu: dict[int, float] = {}
    for threads in (1, 2):
        con = duckdb.connect(":memory:", config={"threads": threads})
        episode = EpisodeTables(con, tables)
        episode.view()
        episode.con.execute(capped(statements[0])).fetchall()
        results, spent = [], 0.0
        for sql in statements:
            start = time.process_time()
            results.append(episode.con.execute(capped(sql)).fetchall())
            spent += time.process_time() - start
        rows[threads], cpu[threads] = results, 1000 * spent
        episode.close()
    pairs = list(zip(rows[1], rows[2], strict=True))
    same = sum(one == two for one, two in pairs)
    same_set = sum(sorted(map(repr, one)) == sorted(map(repr, two)) for one, two in pairs)
    return {
        "cpu_ms_1_thread": cpu[1],
        "cpu_ms_2_threads": cpu[2],
        "same_rows_in_order": same,
        "same_rows_as_sets": same_set,
        "statements": len(statements),
    }


def by_role(times: list[float], counts: dict[str, int]) -> dict[str, float]:
    """The median of a list of per-statement times, by role (the statements in ROLES order)."""
    out, start = {}, 0
    for role in ROLES:
        out[role] = float(np.median(times[start : start + counts[role]]))
        start += counts[role]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--example", type=Path, default=EXAMPLE, help="a kept example's plays (JSON)")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each statement in each form")
    args = parser.parse_args()
    example = json.loads(args.example.read_text())
    per_role = {
        role: [call["arguments"]["sql"] for call in example[role]["calls"] if call["tool"] == "query"] for role in ROLES
    }
    counts = {role: len(per_role[role]) for role in ROLES}
    statements = [sql for role in ROLES for sql in per_role[role]]
    tables = served_tables(int(example["expert"]["seed"]))
    progress(f"seed {example['expert']['seed']}: {counts} statements")
    served = served_times(tables, statements)
    forms = form_times(tables, statements, args.rounds)
    report = {
        "seed": example["expert"]["seed"],
        "statements": counts,
        "served_first_ms_p50": by_role(served["first_ms"], counts),
        "served_again_ms_p50": by_role(served["again_ms"], counts),
        "served_ms": served,
        "forms_ms_p50": {form: by_role(times, counts) for form, times in forms.items()},
        "forms_ms_sum": {form: float(sum(times)) for form, times in forms.items()},
        "operator_ms": operator_ms(tables, statements),
        "threads": threads_check(tables, statements),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
