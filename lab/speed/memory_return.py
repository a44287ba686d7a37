"""Whether a server gives back what a warehouse load took: N WebSocket sessions each reset to its own warehouse
episode and run one statement over its events (so a SQL worker loads its tables), all held open, then all closed.
The resident memory of the server process and of its SQL workers is read idle (after one session came and went),
at the peak (every session open) and at times after the last one closed.

    uv run python -m lab.speed.memory_return --sessions 39

A real server on loopback (`python -m server.app`, SQL_WORKERS=3); the sessions open one after another from one
client. It writes lab/artifacts/memory_return.json; progress goes to stderr. A measurement, not a test: run it on
an otherwise idle machine (tests/test_memory_return.py checks the mechanism).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from lab.speed.rung_budgets_memory import tree_rss_mb
from metric_tracker_rl.server_process import free_port, serving

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "lab" / "artifacts" / "memory_return.json"
SEED_BASE = 930_000  # seeds no calibration or split uses
STATEMENT = "SELECT event_name, count(*) AS n FROM events GROUP BY 1 ORDER BY 2 DESC"
AFTER_S = (0, 10, 30, 60)  # when memory is read after the last session closed


def progress(message: str) -> None:
    print(f"[memory_return] {message}", file=sys.stderr, flush=True)


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024
    return 0.0


def reading(pid: int) -> dict[str, float]:
    """The server process's RSS and its SQL workers' (the rest of its process tree), in MB."""
    server, tree = rss_mb(pid), tree_rss_mb(pid)
    return {"server_mb": round(server, 1), "workers_mb": round(tree - server, 1), "total_mb": round(tree, 1)}


def ask(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    ws.send(json.dumps(message))
    reply: dict[str, Any] = json.loads(ws.recv(timeout=300))
    return reply


def open_session(port: int, seed: int) -> ClientConnection:
    """A session reset to the warehouse episode of `seed` that has run STATEMENT."""
    ws = connect(f"ws://127.0.0.1:{port}/ws", open_timeout=60, max_size=None)
    reset = ask(ws, {"type": "reset", "data": {"difficulty": "warehouse", "seed": seed}})
    assert reset["type"] == "observation", reset
    step = ask(ws, {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": STATEMENT}}})
    assert step["data"]["observation"]["status"] == "ok", step
    return ws


def measure(sessions: int) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port)]
    settings = {
        **os.environ,
        "ENABLE_WEB_INTERFACE": "false",
        "SQL_WORKERS": "3",
        "MAX_CONCURRENT_ENVS": str(sessions + 8),
        "MAX_SESSIONS_PER_CLIENT": str(sessions + 8),
    }
    results: dict[str, Any] = {"sessions": sessions, "cores": os.cpu_count(), "statement": STATEMENT}
    with tempfile.TemporaryFile() as log, serving(command, port, settings, log, cwd=ROOT, timeout_s=600) as server:
        results["started"] = reading(server.pid)
        open_session(port, SEED_BASE - 1).close()  # what any first use loads: the workers, the imports
        time.sleep(2)
        results["idle"] = reading(server.pid)
        progress(f"idle {results['idle']}")
        with contextlib.ExitStack() as held:
            for index in range(sessions):
                held.enter_context(open_session(port, SEED_BASE + index))
                if index % 10 == 9:
                    progress(f"{index + 1} sessions open: {reading(server.pid)}")
            results["peak"] = reading(server.pid)
            progress(f"peak {results['peak']}")
        closed_at = time.monotonic()
        for after in AFTER_S:
            time.sleep(max(0.0, closed_at + after - time.monotonic()))
            results[f"after_{after}s"] = reading(server.pid)
            progress(f"{after} s after closing: {results[f'after_{after}s']}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=39, help="warehouse sessions held open at once")
    parser.add_argument("--label", default="", help="a name for this run in the artifact (default: only run)")
    args = parser.parse_args()
    results = measure(args.sessions)
    print(json.dumps(results, indent=2))
    stored = json.loads(ARTIFACT.read_text()) if args.label and ARTIFACT.exists() else {}
    ARTIFACT.write_text(json.dumps({**stored, args.label: results} if args.label else results, indent=2) + "\n")


if __name__ == "__main__":
    main()
