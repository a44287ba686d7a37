"""Sessions held at once in one server process: each plays an episode over its own WebSocket and stays open, and
the server's memory with all of them open is set against its memory with none (lab/speed/rung_budgets.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.speed.load import serve
from metric_tracker_rl.adapters.transcript import TaskRun
from metric_tracker_rl.client import MetricTrackerRlEnv
from metric_tracker_rl.server_process import SERVER_MODULE

SETTLE_S = 1.0  # lets the server finish what the last reply left (closing a session, freeing its episode)
SPARE_SESSIONS = 8  # the server's session cap above the held sessions, so no session is refused or closed as idle


def tree_rss_mb(root_pid: int) -> float:
    """Resident memory of a process and of every process under it (a server and its SQL workers), in MB."""
    parents: dict[int, int] = {}
    rss: dict[int, float] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue  # ended while listed
        pid = int(status.parent.name)
        parents[pid] = int(fields["PPid"])
        rss[pid] = float(fields.get("VmRSS", "0 kB").split()[0]) / 1024
    tree, grown = {root_pid}, True
    while grown:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grown = bool(children)
    return sum(rss.get(pid, 0.0) for pid in tree)


@dataclass
class Held:
    """One server's figures: RSS (server and workers) after one session came and went, then with every session
    open, and each session's recorded episode."""

    idle_mb: float
    held_mb: float
    server_idle_mb: float
    server_held_mb: float
    runs: list[TaskRun]

    @property
    def mb_per_session(self) -> float:
        return (self.held_mb - self.idle_mb) / len(self.runs)

    def server_figures(self) -> dict[str, float]:
        """The RSS of the server and its workers, and of the server process alone, with none and all open."""
        return {
            "idle_mb": self.idle_mb,
            "held_mb": self.held_mb,
            "server_process_idle_mb": self.server_idle_mb,
            "server_process_held_mb": self.server_held_mb,
        }


def hold_sessions(reset_kwargs: list[dict[str, Any]], play: Callable[[dict[str, Any], Any], TaskRun]) -> Held:
    """A fresh server; one session plays `reset_kwargs[0]` and closes (what every session's first use loads: the
    SQL workers, the tools' imports); then one session per entry plays its episode with `play` and stays open."""
    with serve(SERVER_MODULE, len(reset_kwargs) + SPARE_SESSIONS, "rung_budgets_server") as server:
        with MetricTrackerRlEnv(base_url=server.url).sync() as env:
            play(reset_kwargs[0], env)
        time.sleep(SETTLE_S)
        idle_mb, server_idle_mb = tree_rss_mb(server.pid), server.rss_mb()
        with contextlib.ExitStack() as open_sessions:
            runs = [
                play(kwargs, open_sessions.enter_context(MetricTrackerRlEnv(base_url=server.url).sync()))
                for kwargs in reset_kwargs
            ]
            time.sleep(SETTLE_S)
            return Held(idle_mb, tree_rss_mb(server.pid), server_idle_mb, server.rss_mb(), runs)
