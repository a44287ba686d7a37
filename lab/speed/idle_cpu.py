"""What an idle server costs: CPU time and wake-ups of a server nobody talks to, with and without the /web debugger.

    uv run python -m lab.speed.idle_cpu                 # 3 runs of 20 s each way; writes artifacts/idle_cpu.json
    uv run python -m lab.speed.idle_cpu --seconds 60 --runs 1

Each run starts `python -m server.app` on a loopback port, waits for /health and a settling period (the
start-up's own work and the first garbage collections), then reads, over the measured window:
- `cpu_percent`: user plus system CPU time of the server process (`/proc/<pid>/stat`, every thread) as a share
  of one core;
- `wakeups_per_s`: context switches of all its threads (`/proc/<pid>/task/*/status`), i.e. how often it woke up.
No browser has the page open: this is the cost every replica pays whether or not anyone debugs. The summary is
the median over runs. CPU ticks are 10 ms, so a window of 20 s resolves 0.05% of a core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from metric_tracker_rl.server_process import free_port, serving

ROOT = Path(__file__).resolve().parents[2]
SETTLE_S = 5.0


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_switches(pid: int) -> int:
    """Voluntary and involuntary context switches of every thread of a process so far."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # a thread that ended meanwhile
            continue
        total += sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line)
    return total


def one_run(web: bool, seconds: float) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, "ENABLE_WEB_INTERFACE": "true" if web else "false", "METRIC_TRACKER_DEBUG": ""}
    command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as log, serving(command, port, env, log, cwd=ROOT) as process:
        time.sleep(SETTLE_S)
        cpu_before, switches_before, started = cpu_s(process.pid), context_switches(process.pid), time.monotonic()
        time.sleep(seconds)
        cpu_after, switches_after = cpu_s(process.pid), context_switches(process.pid)
        elapsed = time.monotonic() - started
    return {
        "cpu_percent": round(100 * (cpu_after - cpu_before) / elapsed, 3),
        "wakeups_per_s": round((switches_after - switches_before) / elapsed, 1),
    }


def measure(seconds: float, runs: int) -> dict[str, Any]:
    result: dict[str, Any] = {"seconds": seconds, "runs": runs}
    for web in (False, True):
        name = "with_web" if web else "without_web"
        samples = [one_run(web, seconds) for _ in range(runs)]
        print(f"{name}: {samples}", file=sys.stderr, flush=True)
        result[name] = {
            "samples": samples,
            "cpu_percent": statistics.median(s["cpu_percent"] for s in samples),
            "wakeups_per_s": statistics.median(s["wakeups_per_s"] for s in samples),
        }
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured window")
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration")
    parser.add_argument("--output", type=Path, default=ROOT / "artifacts" / "idle_cpu.json")
    args = parser.parse_args(argv)
    result = measure(args.seconds, args.runs)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    for name in ("without_web", "with_web"):
        print(
            f"{name:12s} cpu {result[name]['cpu_percent']:.2f}% of a core, "
            f"{result[name]['wakeups_per_s']:.0f} wake-ups/s"
        )


if __name__ == "__main__":
    main()
