"""The SQL tool under attack: statements that change the tables, hold memory, run past every limit or
crash the driver, and one client starving another. Each case is an error observation (or a bounded answer) that
costs one step, over every transport: the tool in process, /ws (which the /web debugger's tabs use too) and
MCP (on /ws and POST /mcp).

The runaway cases stop at the time limit (an interrupt), or the pool kills their worker at the time limit plus a
grace period, or the worker's address-space limit ends them: each bound below is that deadline plus slack for a
busy machine, never a speed target (lab/speed/sql_abuse.py measures).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sql_helpers import ws_session
from websockets.sync.client import ClientConnection

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.pool import (
    KILL_GRACE_S,
    LOAD_GRACE_S,
    FairGate,
    pool,
)
from metric_tracker_rl.sql.sandbox import TIME_LIMIT_S
from tests.conftest import running_server

DEADLINE_S = TIME_LIMIT_S + KILL_GRACE_S + LOAD_GRACE_S + 10.0  # the pool's deadline and a busy machine's slack
S100K = "(SELECT string_agg(chr((97 + range % 26)::INTEGER), '') AS s FROM range(100000))"  # a 100,000-character string
S20K = "(SELECT string_agg('x', '') AS s FROM range(20000))"
REFUSED_DML = r"(DELETE|UPDATE|INSERT) inside a query is not allowed: the tables are read-only"
STOPPED = r"time limit and was stopped|more memory than a query may use"
NOT_ALLOWED = r"statement( \([A-Z]+ \.\.\.\))? is not allowed\. Allowed: one read-only SELECT"
UNCLASSIFIED = r"^query: an? [A-Z ]+ statement"
INTERNAL = r"is not allowed: it shows the SQL engine, not the episode's data; SHOW TABLES"

# (sql, what the message says): nine known attacks first, then other ways of writing them and other statements.
CASES: list[tuple[str, str]] = [
    # the known attacks: DML inside a CTE, an unclassified statement, statements that outgrow the time or memory
    ("WITH x AS (DELETE FROM daily RETURNING *) SELECT * FROM x", REFUSED_DML),
    ("WITH x AS (UPDATE daily SET app_opens = 0 RETURNING *) SELECT * FROM x", REFUSED_DML),
    ("WITH x AS (INSERT INTO daily SELECT * FROM daily RETURNING *) SELECT count(*) FROM x", REFUSED_DML),
    (
        "WITH x AS (INSERT INTO hourly_by_segment SELECT * FROM hourly_by_segment RETURNING 1) SELECT count(*) FROM x",
        REFUSED_DML,
    ),
    ("UPDATE EXTENSIONS", UNCLASSIFIED),
    (f"SELECT levenshtein(s, s) AS d FROM {S100K}", STOPPED),
    ("SELECT count(*) AS n FROM " + ", ".join(f"range(2) t{i}" for i in range(200)), STOPPED),
    (f"SELECT length(replace(s, 'x', s)) AS n FROM {S20K}", STOPPED),
    ("SELECT b.range AS k, list(a.range) AS l FROM range(1000000) a, range(200) b GROUP BY b.range", STOPPED),
    # DML inside CTEs, every way of writing one
    ("WITH a AS (SELECT 1 AS one), b AS (DELETE FROM annotations RETURNING *) SELECT * FROM a, b", REFUSED_DML),
    ("SELECT * FROM (WITH x AS (DELETE FROM daily RETURNING date) SELECT * FROM x)", REFUSED_DML),
    ("WITH x AS MATERIALIZED (DELETE FROM daily RETURNING *) SELECT * FROM x", REFUSED_DML),
    ("WITH x AS (DELETE FROM daily RETURNING *) SELECT date FROM x UNION ALL SELECT date FROM daily", REFUSED_DML),
    ("WITH x AS (DELETE FROM hourly WHERE hour < 12 RETURNING *) SELECT count(*) FROM x", REFUSED_DML),
    ("WITH x AS (UPDATE hourly SET orders_placed = orders_placed * 2 RETURNING *) SELECT count(*) FROM x", REFUSED_DML),
    (
        "WITH x AS (INSERT INTO annotations VALUES (DATE '2026-03-03', 'x', 'y') RETURNING *) SELECT * FROM x",
        REFUSED_DML,
    ),
    (
        "SELECT count(*) AS n FROM daily WHERE date IN (WITH x AS (DELETE FROM daily RETURNING date) SELECT * FROM x)",
        REFUSED_DML,
    ),
    # statements DuckDB's client cannot classify, and others that only look like queries
    ("UPDATE EXTENSIONS (httpfs)", UNCLASSIFIED),
    ("CREATE OR REPLACE TEMP VIEW daily AS SELECT 1 AS x", NOT_ALLOWED),
    ("DROP VIEW daily", NOT_ALLOWED),
    ("ALTER VIEW daily RENAME TO gone", NOT_ALLOWED),
    ("COMMENT ON TABLE daily IS 'x'", NOT_ALLOWED),
    ("MERGE INTO daily USING daily AS s ON false WHEN NOT MATCHED THEN INSERT VALUES (s.*)", NOT_ALLOWED),
    ("DETACH DATABASE memory", NOT_ALLOWED),
    ("LOAD 'x'", NOT_ALLOWED),
    # quadratic functions over long strings
    (f"SELECT damerau_levenshtein(s, s) AS d FROM {S100K}", STOPPED),
    (f"SELECT levenshtein(s, reverse(s)) AS d FROM {S100K}", STOPPED),
    (f"SELECT damerau_levenshtein(s, reverse(s)) AS d FROM {S100K}", STOPPED),
    (f"SELECT editdist3(s, reverse(s)) AS d FROM {S100K}", STOPPED),
    (f"SELECT length(regexp_replace(s, 'x', s, 'g')) AS n FROM {S20K}", STOPPED),
    # value builders: replace, concatenation chains, concat_ws, lists cast to text
    (f"SELECT length(replace(replace(s, 'x', s), 'x', 'yy')) AS n FROM {S20K}", STOPPED),
    (
        "WITH a AS (SELECT string_agg('x', '') AS s FROM range(100000)), b AS (SELECT s||s||s||s||s||s||s||s||s||s AS s "  # noqa: E501
        "FROM a), c AS (SELECT s||s||s||s||s||s||s||s||s||s AS s FROM b), d AS (SELECT s||s||s||s||s||s||s||s||s||s AS s "  # noqa: E501
        "FROM c) SELECT length(s) AS n FROM d",
        STOPPED,
    ),
    (
        "SELECT length(concat_ws(s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s)) AS n FROM "
        "(SELECT string_agg('x', '') AS s FROM range(20000000))",
        STOPPED,
    ),
    ("SELECT length(array_to_string(list(range), ',')) AS n FROM range(20000000)", STOPPED),
    ("SELECT length(to_json(list(range))::VARCHAR) AS n FROM range(30000000)", STOPPED),
    (
        "SELECT [s, s, s, s, s, s, s, s]::VARCHAR AS t FROM (SELECT string_agg('x', '') AS s FROM range(20000000))",
        STOPPED,
    ),
    ("SELECT list(range)::VARCHAR AS t FROM range(100000000)", STOPPED),
    (
        "SELECT length(string_agg(s, '')) AS n FROM (SELECT string_agg('x', '') AS s FROM range(100000)), range(5000)",
        STOPPED,
    ),
    # huge joins
    ("SELECT count(*) AS n FROM " + ", ".join(f"daily d{i}" for i in range(60)), STOPPED),
    (
        "SELECT count(*) AS n FROM "
        + " JOIN ".join(f"hourly h{i}" for i in range(40)).replace(" JOIN ", " CROSS JOIN "),
        STOPPED,
    ),
    (
        "SELECT sum(a.app_opens * b.app_opens * c.app_opens) AS n FROM hourly_by_segment a, hourly_by_segment b, "
        "hourly c",
        STOPPED,
    ),
    ("SELECT max(a.platform || b.country) AS m FROM hourly_by_segment a, hourly_by_segment b", STOPPED),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r", STOPPED),
    ("SELECT count(*) AS n FROM daily a, daily b, daily c, daily d, daily e, daily f", STOPPED),
    (
        "SELECT length(string_agg(a.platform || b.country, '')) AS n FROM hourly_by_segment a, hourly_by_segment b",
        STOPPED,
    ),
    # more DML in CTEs and value builders
    ("WITH x AS (DELETE FROM releases RETURNING *) SELECT count(*) AS n FROM x", REFUSED_DML),
    ("WITH x AS (UPDATE hourly_by_segment SET platform = 'x' RETURNING 1) SELECT count(*) AS n FROM x", REFUSED_DML),
    ("SELECT list(a.range)::VARCHAR AS t FROM range(1000000) a, range(100) b GROUP BY b.range", STOPPED),
    (f"SELECT length(lower(upper(replace(s, 'x', s || s)))) AS n FROM {S20K}", STOPPED),
    # 16 copies of 60M characters: past the worker's 768 MB whatever the machine's speed (20M fit, and finished)
    (
        "SELECT length(concat(s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s)) AS n FROM "
        "(SELECT string_agg('x', '') AS s FROM range(60000000))",
        STOPPED,
    ),
    (f"SELECT levenshtein(s, s || 'x') AS d FROM {S100K}", STOPPED),
    # the engine's internals: its views' definitions (the worker's object names) and its version
    ("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal", INTERNAL),
    ("SELECT sql FROM sqlite_master", INTERNAL),
    ("SELECT table_name, view_definition FROM information_schema.views", INTERNAL),
    ("SELECT version() AS v", INTERNAL),
]


def frontier_environment() -> MetricTrackerRlEnvironment:
    environment = MetricTrackerRlEnvironment()
    environment.reset(seed=7, difficulty="frontier", max_steps=500)
    return environment


@pytest.fixture(scope="module")
def env() -> Iterator[MetricTrackerRlEnvironment]:
    environment = frontier_environment()
    yield environment
    environment.close()


def step(environment: MetricTrackerRlEnvironment, sql: str) -> Any:
    return environment.step(MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": sql}))


def totals(environment: MetricTrackerRlEnvironment) -> dict[str, Any]:
    """What the attacks try to change: each table's row count and a sum."""
    sql = (
        "SELECT (SELECT count(*) FROM daily) AS daily, (SELECT sum(app_opens) FROM daily) AS opens, "
        "(SELECT count(*) FROM hourly) AS hourly, (SELECT count(*) FROM annotations) AS notes, "
        "(SELECT count(*) FROM hourly_by_segment) AS segments"
    )
    observation = step(environment, sql)
    assert observation.status == "ok", observation.message
    return observation.analysis_result["rows"][0]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_there_are_the_known_attacks_and_forty_more() -> None:
    """The nine known attacks, and at least 40 more cases, none repeated."""
    assert len(CASES) >= 9 + 40 and len({sql for sql, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("sql", "says"), CASES, ids=[f"case{i}" for i in range(len(CASES))])
@pytest.mark.slow
def test_each_case_is_an_error_observation_that_costs_one_step(
    env: MetricTrackerRlEnvironment, sql: str, says: str
) -> None:
    before_totals, before_steps = totals(env), env.state.step_count
    rss_before = rss_mb()
    observation = step(env, sql)
    assert observation.status == "error" and observation.message.startswith("query: "), observation.message
    assert pytest.approx(0.0) == observation.reward and not observation.done
    assert re.search(says, observation.message), observation.message
    assert env.state.step_count == before_steps + 1
    assert totals(env) == before_totals  # nothing changed, and the session goes on
    assert rss_mb() - rss_before < 64  # the work happened in a worker, never in this process


def test_memory_held_across_queries_is_never_more_than_the_tables() -> None:
    """An attack: the CTE trick repeated to grow a session's tables while other sessions run. Here it is
    refused every time, the tables keep their size, and another session's query keeps working."""
    attacker, other = frontier_environment(), frontier_environment()
    try:
        size = totals(attacker)["segments"]
        for _ in range(5):
            doubled = step(
                attacker,
                "WITH x AS (INSERT INTO hourly_by_segment SELECT * FROM hourly_by_segment "
                "RETURNING 1) SELECT count(*) FROM x",
            )
            assert doubled.status == "error" and "read-only" in doubled.message
            assert totals(attacker)["segments"] == size
            heavy = other.step(
                MetricTrackerRlAction(
                    analysis_method="query",
                    analysis_args={
                        "sql": "SELECT platform, country, sum(orders_placed) AS o FROM hourly_by_segment GROUP BY ALL"
                    },
                )
            )
            assert heavy.status == "ok", heavy.message
    finally:
        attacker.close()
        other.close()


def test_no_setting_or_readable_function_names_a_path_or_a_user(env: MetricTrackerRlEnvironment) -> None:
    home, cwd, user = os.path.expanduser("~"), os.getcwd(), os.environ.get("USER", "root")
    texts = []
    for sql in (
        "SELECT name, value FROM duckdb_settings()",
        "SELECT * FROM duckdb_databases()",
        "SELECT current_setting('home_directory') AS h, current_setting('secret_directory') AS s, "
        "current_setting('temp_directory') AS t, current_setting('extension_directory') AS e",
        "SELECT * FROM duckdb_schemas()",
        "SELECT current_user AS u, current_database() AS d",
    ):
        result = env.step(MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": sql, "limit": 120}))
        texts.append(json.dumps(result.analysis_result or result.message))
        offset = (result.analysis_result or {}).get("next_offset")
        while offset:
            page = env.step(
                MetricTrackerRlAction(
                    analysis_method="query", analysis_args={"sql": sql, "limit": 120, "offset": offset}
                )
            )
            texts.append(json.dumps(page.analysis_result))
            offset = page.analysis_result["next_offset"]
    text = "\n".join(texts)
    for secret in {home, cwd, "/root", "/home", "/tmp", "/work", user if len(user) > 3 else "/root"}:
        assert secret not in text, secret


def test_an_unknown_table_suggests_the_episodes_own_tables(env: MetricTrackerRlEnvironment) -> None:
    near = step(env, "SELECT * FROM hourly_by_segmnt").message
    assert "Did you mean hourly_by_segment?" in near and "pg_" not in near
    far = step(env, "SELECT * FROM pg_enum2").message
    assert "pg_" not in far.replace("pg_enum2", "") and "tables: daily(" in far


def test_a_and_an_agree_with_the_statement() -> None:
    environment = frontier_environment()
    try:
        assert "an ATTACH statement is not allowed" in step(environment, "ATTACH ':memory:' AS x").message
        assert "an INSERT statement is not allowed" in step(environment, "INSERT INTO daily VALUES (1)").message
        assert "a DROP statement is not allowed" in step(environment, "DROP TABLE daily").message
    finally:
        environment.close()


# --- fair turns -------------------------------------------------------------------------------------------


def test_the_gate_keeps_a_turn_for_another_client_and_alternates_between_clients() -> None:
    async def scenario() -> list[str]:
        gate = FairGate(slots=3, per_client=2)
        for client in ("a", "b"):  # both known to be quick (a client never seen counts as slow)
            async with gate.turn(client):
                pass
        order: list[str] = []
        release = {name: asyncio.Event() for name in ("a1", "a2", "a3", "a4", "b1", "b2")}

        async def query(name: str) -> None:
            async with gate.turn(name[0]):
                order.append(name)
                await release[name].wait()

        tasks = [asyncio.create_task(query(name)) for name in ("a1", "a2", "a3", "a4")]
        while len(order) < 2:
            await asyncio.sleep(0)
        assert order == ["a1", "a2"] and gate.running["a"] == 2  # a3 and a4 wait: a's limit
        tasks.append(asyncio.create_task(query("b1")))
        while len(order) < 3:
            await asyncio.sleep(0)
        assert order[-1] == "b1"  # b gets the worker a may not take, at once
        tasks.append(asyncio.create_task(query("b2")))
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(order) == 3  # every slot is taken: b2 waits
        release["a1"].set()
        while len(order) < 4:
            await asyncio.sleep(0)
        release["b1"].set()
        while len(order) < 5:
            await asyncio.sleep(0)
        for event in release.values():
            event.set()
        await asyncio.gather(*tasks)
        assert not gate.running and not gate.waiting
        return order

    order = asyncio.run(scenario())
    assert order[:3] == ["a1", "a2", "b1"] and set(order[3:5]) == {"a3", "b2"} and order[5] == "a4"


def test_a_cancelled_wait_gives_its_turn_away() -> None:
    async def scenario() -> None:
        gate = FairGate(slots=1, per_client=1)
        held = asyncio.Event()
        done = asyncio.Event()

        async def holder() -> None:
            async with gate.turn("a"):
                held.set()
                await done.wait()

        first = asyncio.create_task(holder())
        await held.wait()

        async def waiter() -> None:
            async with gate.turn("b"):
                pass

        waiting = asyncio.create_task(waiter())
        for _ in range(3):
            await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        done.set()
        await first
        assert not gate.running and not gate.waiting
        async with gate.turn("c"):
            assert gate.running["c"] == 1

    asyncio.run(scenario())


# --- over a real server: /ws and MCP ------------------------------------------------------------------------

TRANSPORT_CASES = [
    ("WITH x AS (DELETE FROM daily RETURNING *) SELECT * FROM x", "read-only"),
    ("UPDATE EXTENSIONS", "UPDATE statement is not allowed"),
    (f"SELECT levenshtein(s, s) AS d FROM {S100K}", "time limit"),
    (f"SELECT length(replace(s, 'x', s)) AS n FROM {S20K}", "time limit|more memory"),
    ("SELECT * FROM pg_enum2", "tables: daily("),
]


@pytest.fixture(scope="module")
def web_server() -> Iterator[str]:
    """A server with the debugger's routes on (the image's default), a small SQL pool."""
    with running_server(
        extra_env={"ENABLE_WEB_INTERFACE": "true", "SQL_WORKERS": "3", "MAX_SESSIONS_PER_CLIENT": "16"}
    ) as url:
        yield url


def ask(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    ws.send(json.dumps(message))
    return json.loads(ws.recv(timeout=120))


def reset(ws: ClientConnection) -> dict[str, Any]:
    reply = ask(ws, {"type": "reset", "data": {"seed": 7, "difficulty": "frontier", "max_steps": 200}})
    assert reply["type"] == "observation", reply
    return reply["data"]["observation"]


def query_message(sql: str) -> dict[str, Any]:
    return {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": sql}}}


@pytest.mark.slow
def test_each_transport_answers_an_error_observation_that_costs_one_step(web_server: str) -> None:
    with ws_session(web_server) as ws:
        steps = reset(ws)["steps_remaining"]
        for index, (sql, says) in enumerate(TRANSPORT_CASES):
            reply = ask(ws, query_message(sql))
            assert reply["type"] == "observation", reply  # never a protocol error
            observation = reply["data"]["observation"]
            assert observation["status"] == "error" and observation["message"].startswith("query: ")
            assert any(part in observation["message"] for part in says.split("|")), observation["message"]
            steps -= 1
            assert observation["steps_remaining"] == steps
            called = ask(
                ws,
                {
                    "type": "mcp",
                    "data": {
                        "jsonrpc": "2.0",
                        "method": "tools/call",
                        "id": index,
                        "params": {"name": "query", "arguments": {"sql": sql}},
                    },
                },
            )
            assert called["type"] == "mcp" and "error" not in called["data"], called
            result = called["data"]["result"]
            assert result["is_error"] is True and "query: " in json.dumps(result)
            steps -= 1
        state = ask(ws, {"type": "state"})["data"]
        assert state["step_count"] == 2 * len(TRANSPORT_CASES)
        daily = ask(ws, query_message("SELECT count(*) AS n FROM daily"))["data"]["observation"]
        assert daily["analysis_result"]["rows"] == [{"n": 56}]
    with httpx.Client(base_url=web_server, timeout=120) as http:
        # The debugger has no SQL path of its own: its tabs are /ws sessions, and OpenEnv's shared one is gone.
        assert http.post("/web/step", json={"action": {"analysis_method": "query"}}).status_code == 404
        assert http.get("/health").status_code == 200


@pytest.mark.slow
def test_another_clients_cheap_query_is_answered_while_one_client_runs_slow_queries(web_server: str) -> None:
    """One client (127.0.0.2) runs a slow query in each of 8 sessions; another (127.0.0.1) asks a cheap one. The
    cheap one is answered while every slow one is still running: it took a worker the first client may not use."""
    slow = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
    with contextlib.ExitStack() as sessions:
        attackers = [sessions.enter_context(ws_session(web_server, "127.0.0.2")) for _ in range(8)]
        victim = sessions.enter_context(ws_session(web_server))
        for ws in [*attackers, victim]:
            reset(ws)
        assert ask(victim, query_message("SELECT 1 AS warm"))["data"]["observation"]["status"] == "ok"
        for ws in attackers:
            ws.send(json.dumps(query_message(slow)))
        answered: list[int] = []

        def collect(index: int, ws: ClientConnection) -> None:
            json.loads(ws.recv(timeout=120))
            answered.append(index)

        readers = [threading.Thread(target=collect, args=(i, ws)) for i, ws in enumerate(attackers)]
        for reader in readers:
            reader.start()
        cheap = ask(victim, query_message("SELECT weekday, sum(orders_placed) AS o FROM daily GROUP BY weekday"))
        still_running = 8 - len(answered)
        for reader in readers:
            reader.join(timeout=300)
        assert cheap["data"]["observation"]["status"] == "ok"
        assert still_running >= 6, still_running  # at most the two the first client may run had ended
        assert sorted(answered) == list(range(8))


@pytest.mark.slow
def test_a_statement_killed_at_the_deadline_replaces_its_worker_and_the_next_query_works(
    env: MetricTrackerRlEnvironment,
) -> None:
    before = pool().replaced
    killed = step(env, f"SELECT levenshtein(s, s) AS d FROM {S100K}")
    assert killed.status == "error" and "time limit" in killed.message
    assert pool().replaced == before + 1
    assert step(env, "SELECT count(*) AS n FROM daily").analysis_result["rows"] == [{"n": 56}]
