"""How fast the /web debugger feels: first load to a usable page, and Reset to redrawn charts.

    uv run python -m lab.speed.debugger             # 5 runs; writes artifacts/debugger_benchmark.json
    uv run python -m lab.speed.run --only debugger  # the same, as a section of the full benchmark

One server (`python -m server.app`, debugger on) on a loopback port and Debian's headless Chromium through
Playwright. Each run opens the page in a fresh browser context (nothing cached, as for a first visit) and
records:
- `shell_s`: navigation until the Gradio page shows its status line (the page's JavaScript has booted);
- `first_ready_s`: navigation until the first episode's charts are drawn (the page resets on load);
- `reset_s`: a press of Reset until the charts of the new episode replace the old ones.
Each chart carries the tab's reset count (`data-reset`), so "redrawn" means the new episode's charts are in
the page, not that some request returned. The summary is the median over runs. Wall times grow with other
load on the machine, so each run also records the busy time it cost, which load changes much less: the
page's main-thread task time (Chrome's `Performance.getMetrics` TaskDuration) and the server's CPU time
(`/proc/<pid>/stat`).
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
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TARGETS = {"debugger_first_ready_s": 3.0, "debugger_reset_s": 1.0}
TIMEOUT_MS = 120_000
RESETS_PER_RUN = 3


def _charts_drawn(page: Any, reset_count: int) -> None:
    page.wait_for_selector(f"#chart-counts .mt-chart[data-reset='{reset_count}']", state="attached", timeout=TIMEOUT_MS)


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def page_busy_s(cdp: Any) -> float:
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return float(metrics["TaskDuration"])


def one_run(browser: Any, url: str, server_pid: int) -> dict[str, Any]:
    """A first visit in a fresh context, then a few Resets; times in seconds."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    server_start, start = cpu_s(server_pid), time.perf_counter()
    page.goto(f"{url}/web/", wait_until="commit")
    page.wait_for_selector("#status", state="attached", timeout=TIMEOUT_MS)
    shell = time.perf_counter() - start
    _charts_drawn(page, 1)
    first_ready = time.perf_counter() - start
    first = {"page_busy_s": page_busy_s(cdp), "server_cpu_s": cpu_s(server_pid) - server_start}
    resets, reset_busy, reset_cpu = [], [], []
    for count in range(2, RESETS_PER_RUN + 2):
        busy, server_start, start = page_busy_s(cdp), cpu_s(server_pid), time.perf_counter()
        page.click("#reset-button")
        _charts_drawn(page, count)
        resets.append(time.perf_counter() - start)
        reset_busy.append(page_busy_s(cdp) - busy)
        reset_cpu.append(cpu_s(server_pid) - server_start)
    context.close()
    return {
        "shell_s": shell,
        "first_ready_s": first_ready,
        "first_ready_busy": first,
        "reset_s": resets,
        "reset_page_busy_s": reset_busy,
        "reset_server_cpu_s": reset_cpu,
    }


def bench_debugger(runs: int = 5) -> dict[str, Any]:
    """Median first load and Reset over `runs` fresh visits; skipped without Chromium or Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"skipped": True, "note": "playwright is not installed (uv sync)"}
    if not os.path.exists(CHROMIUM):
        return {"skipped": True, "note": f"{CHROMIUM} is missing (apt-get install chromium)"}
    port = free_port()
    env = {**os.environ, "ENABLE_WEB_INTERFACE": "true", "METRIC_TRACKER_DEBUG": "0"}
    command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port)]
    results = []
    with (
        tempfile.TemporaryFile() as log,
        serving(command, port, env, log, cwd=ROOT, timeout_s=180.0) as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        url = f"http://127.0.0.1:{port}"
        one_run(browser, url, server.pid)  # warm-up: the server's first page build is not a visit
        for index in range(runs):
            results.append(one_run(browser, url, server.pid))
            print(
                f"[benchmark] debugger run {index + 1}/{runs}: first ready {results[-1]['first_ready_s']:.2f} s, "
                f"resets {', '.join(f'{r:.2f}' for r in results[-1]['reset_s'])} s",
                file=sys.stderr,
                flush=True,
            )
        browser.close()

    def all_resets(key: str) -> list[float]:
        return [value for run in results for value in run[key]]

    return {
        "skipped": False,
        "runs": results,
        "shell_median_s": statistics.median(r["shell_s"] for r in results),
        "first_ready_median_s": statistics.median(r["first_ready_s"] for r in results),
        "first_ready_page_busy_median_s": statistics.median(r["first_ready_busy"]["page_busy_s"] for r in results),
        "first_ready_server_cpu_median_s": statistics.median(r["first_ready_busy"]["server_cpu_s"] for r in results),
        "reset_median_s": statistics.median(all_resets("reset_s")),
        "reset_page_busy_median_s": statistics.median(all_resets("reset_page_busy_s")),
        "reset_server_cpu_median_s": statistics.median(all_resets("reset_server_cpu_s")),
        "load_average": os.getloadavg(),
    }


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """Table rows: measurement, result, target, whether the target is met (None when skipped)."""
    if result.get("skipped"):
        return [("debugger first load", f"skipped: {result['note']}", "", None)]
    load = ", ".join(f"{v:.1f}" for v in result["load_average"])
    first, reset = result["first_ready_median_s"], result["reset_median_s"]
    return [
        (
            "debugger first load to drawn charts",
            f"median {first:.2f} s of {len(result['runs'])} (page shell {result['shell_median_s']:.2f} s; busy: page "
            f"{result['first_ready_page_busy_median_s']:.2f} s, server CPU "
            f"{result['first_ready_server_cpu_median_s']:.2f} s; load average {load})",
            f"≤ {TARGETS['debugger_first_ready_s']:g} s",
            first <= TARGETS["debugger_first_ready_s"],
        ),
        (
            "debugger Reset to redrawn charts",
            f"median {reset:.2f} s of {sum(len(r['reset_s']) for r in result['runs'])} (busy: page "
            f"{result['reset_page_busy_median_s']:.2f} s, server CPU {result['reset_server_cpu_median_s']:.2f} s)",
            f"≤ {TARGETS['debugger_reset_s']:g} s",
            reset <= TARGETS["debugger_reset_s"],
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", type=Path, default=ROOT / "artifacts" / "debugger_benchmark.json")
    args = parser.parse_args(argv)
    result = bench_debugger(args.runs)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    for name, value, target, met in rows(result):
        print(f"{name}: {value} (target {target}{'' if met is None else ', ok' if met else ', MISSED'})")


if __name__ == "__main__":
    main()
