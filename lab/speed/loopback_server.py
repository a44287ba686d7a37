"""What the load and attack measurements share: a server of any checkout on a loopback port (its log kept, so that
its tracebacks can be counted), which commit that checkout is at, busy processes at normal priority beside it, the
machine's load average over a run, loopback clients, and the artifact whose `before` and `after` columns one
command fills in turn (run on the old code, then on the new)."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from websockets.sync.client import ClientConnection, connect

from metric_tracker_rl import server_process

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
COLUMNS = ("before", "after")
BUSY_LOOP = "while True:\n    pass\n"


@dataclass(frozen=True)
class Served:
    url: str
    pid: int
    log: Path

    def tracebacks(self) -> int:
        """How many tracebacks the server has logged so far."""
        return self.log.read_text(errors="replace").count("Traceback (most recent call last)")


@contextlib.contextmanager
def loopback_server(root: Path, env: dict[str, str] | None = None) -> Iterator[Served]:
    """`python -m server.app` of the checkout at `root` (its code first on the path) on a free loopback port, the
    debugger off unless `env` says otherwise; stopped on exit."""
    port = server_process.free_port()
    command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port)]
    full_env = {**os.environ, **server_process.STANDARD_MODE, **(env or {})}
    full_env.pop(server_process.SECRET_VARIABLE, None)
    with tempfile.TemporaryDirectory() as directory:
        log_path = Path(directory) / "server.log"
        with (
            log_path.open("w+b") as log,
            server_process.serving(command, port, full_env, log, cwd=root, timeout_s=180) as process,
        ):
            yield Served(f"http://127.0.0.1:{port}", process.pid, log_path)


def checkout(root: Path) -> dict[str, Any]:
    """Which code a server ran: its checkout, the commit checked out, the last commit that changed anything outside
    the lab (the server's code), and whether files outside the lab differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    outside_lab = ["--", ".", ":(exclude)lab"]
    return {
        "server_root": str(root),
        "commit": git("rev-parse", "--short", "HEAD"),
        "code_commit": git("log", "-1", "--format=%h", *outside_lab),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no", *outside_lab)),
    }


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[list[int]]:
    """`count` pure-Python busy loops at normal priority (as a trainer, a tokenizer or a test suite would be), each
    stopped on exit."""
    processes = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


@contextlib.contextmanager
def load_average_sampled(every_s: float = 5.0) -> Iterator[dict[str, float]]:
    """The 1-minute load average at the start, then its mean and maximum over the block (sampled every `every_s`)."""
    seen = {"at_start": round(os.getloadavg()[0], 2)}
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every_s):
            samples.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        stop.set()
        sampler.join()
        samples = samples or [os.getloadavg()[0]]
        seen.update(mean=round(float(np.mean(samples)), 2), max=round(max(samples), 2))


def ws_from(url: str, source: str, timeout_s: float = 120.0, close_timeout_s: float = 2.0) -> ClientConnection:
    """A /ws connection from the loopback address `source` (another address is another client to the server)."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s, source_address=(source, 0))
    return connect(
        url.replace("http", "ws", 1) + "/ws",
        sock=sock,
        open_timeout=timeout_s,
        max_size=32 * MIB,
        ping_interval=None,
        close_timeout=close_timeout_s,
    )  # a slow server is measured, not given up on


def never_seen_address(index: int) -> str:
    """The `index`th of a parade's fresh loopback addresses (none of them a known client's)."""
    return f"127.1.{index // 250}.{1 + index % 250}"


def visitor_parade(visit: Callable[[int], None], more: Callable[[int], bool], every_s: float) -> int:
    """Visitors, one every `every_s` while `more(index)`, each `visit(index)` on a thread of its own; returns how
    many came once every one has left."""
    visitors = []
    for index in itertools.count():
        if not more(index):
            break
        visitors.append(threading.Thread(target=visit, args=(index,), daemon=True))
        visitors[-1].start()
        time.sleep(every_s)
    for thread in visitors:
        thread.join()
    return len(visitors)


def ask(ws: ClientConnection, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    ws.send(json.dumps(message))
    return json.loads(ws.recv(timeout=timeout_s))


def observation(reply: dict[str, Any]) -> dict[str, Any]:
    """A reply's observation; a reply that is not one (the server's own error message) as an error observation."""
    if reply.get("type") == "observation":
        return reply["data"]["observation"]
    return {"status": "error", "message": f"{reply.get('type')}: {reply.get('data')}"}


def spread(samples: list[float], quantiles: tuple[int, ...], scale: float = 1.0, digits: int = 3) -> dict[str, Any]:
    """The samples' percentiles (and maximum) times `scale`, rounded; None where there are no samples."""
    if not samples:
        return {**{f"p{q}": None for q in quantiles}, "max": None, "n": 0}
    values = np.percentile(np.asarray(samples) * scale, quantiles)
    return {
        **{f"p{q}": round(float(v), digits) for q, v in zip(quantiles, values, strict=True)},
        "max": round(max(samples) * scale, digits),
        "n": len(samples),
    }


def commit_cells(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """A two-column table's commit cells: each column's server code, marked when its checkout had changes."""
    return " | ".join(
        "—" if column is None else column["code_commit"] + (" (changed)" if column["dirty"] else "")
        for column in (before, after)
    )


def attack_arguments(
    description: str, rows: Sequence[str], roles: dict[str, Callable[[str, float], dict[str, Any]]]
) -> argparse.Namespace | None:
    """An attack benchmark's command line: the rows to measure, each victim's length, the checkout attacked and the
    artifact's column. Run as one of `roles` (a process the benchmark starts: --role, --url), it plays that role,
    prints its result and returns None."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--only", choices=list(rows), action="append", help="a row to measure (all by default)")
    parser.add_argument("--seconds", type=float, default=20.0, help="each victim measurement's length")
    parser.add_argument("--server-root", type=Path, default=ROOT, help="the checkout whose server is attacked")
    parser.add_argument("--column", choices=["before", "after"], default="after")
    parser.add_argument("--role", choices=sorted(roles), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role is None:
        return args
    print(json.dumps(roles[args.role](args.url, args.seconds)))
    return None


def before_after_table(
    kept: dict[str, Any], rows: Sequence[tuple[str, str, str, Callable[[dict[str, Any]], str]]]
) -> str:
    """A kept two-column run as the docs' table: each (row, attack, measure, render) under the old code and the new,
    a dash where a column has no such row, then each column's range of its rows' load averages."""
    before, after = kept["before"], kept["after"]

    def cell(column: dict[str, Any] | None, row: str, render: Callable[[dict[str, Any]], str]) -> str:
        found = (column or {}).get("rows", {}).get(row)
        return "—" if found is None else render(found)

    def load(column: dict[str, Any] | None) -> str:
        means = [row["load_average"]["mean"] for row in (column or {}).get("rows", {}).values()]
        return "—" if not means else f"{min(means):.1f} – {max(means):.1f}"

    lines = [
        "| attack | measure | before | after |",
        "| --- | --- | --- | --- |",
        f"| (the server's code: commit) | | {commit_cells(before, after)} |",
    ]
    for row, attack, measure, render in rows:
        lines.append(f"| {attack} | {measure} | {cell(before, row, render)} | {cell(after, row, render)} |")
    lines.append(f"| (load average, each row's mean) | | {load(before)} | {load(after)} |")
    return "\n".join(lines)


def read_artifact(artifact: Path) -> dict[str, Any]:
    kept = json.loads(artifact.read_text(encoding="utf-8")) if artifact.exists() else {}
    return {"command": "", **{name: None for name in COLUMNS}, **kept}


def write_column(artifact: Path, column: str, updates: dict[str, Any], command: str) -> None:
    """Merge `updates` into the artifact's `column` (its other keys, and the other column, kept)."""
    kept = read_artifact(artifact)
    kept["command"] = command
    kept[column] = {**(kept[column] or {}), **updates}
    artifact.write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")
