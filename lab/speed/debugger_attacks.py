"""Measure what hostile visitors of the /web debugger cost the server and everyone else: the server's memory,
threads and open files during and after each attack, and another visitor's cheap page event, p50 and p99.

    uv run python -m lab.speed.debugger_attacks                  # every attack, into lab/artifacts/
    uv run python -m lab.speed.debugger_attacks --only undelivered --seconds 20
    uv run python -m lab.speed.debugger_attacks --server-root /tmp/old   # another checkout's server
    uv run python -m lab.speed.debugger_attacks --reference /tmp/old     # each row beside another checkout's

The server runs as `python -m server.app` with the debugger on (the image's per-client cap of 8 unless an attack
needs more). Attackers speak Gradio's own queue protocol (`/web/gradio_api/queue/join` and `/queue/data`) from
their own loopback addresses, as a script against a public Space would; the victim runs in its own process on
127.0.0.3 and times a cheap page event (choosing a difficulty: no episode, no SQL) from joining to its result.

- `undelivered`: 3 addresses x 7 tabs fire resets and never read a result.
- `undelivered_12`: the same from 12 addresses x 8 tabs (the debugger's ceilings for all visitors together).
- `refused_tabs`: an address at its session cap loads the page again and again (each load's reset is refused).
- `slow_tabs`: 42 tabs of one address reset at once (each reset's chart reads take the address's SQL turns); a tab
  whose event is refused tries again 0.5 s later, as a person would.
- `busy_tabs`: 16 tabs of one address fire a cheap page event (the victim's) back to back, each reading its
  result (`lab.speed.attack_degraded` measures it beside the old server's).
- `worst`: the heaviest load at once, on the default 64 places: 12 addresses x 8 tabs resetting abyss and never
  reading, 8 addresses x 8 sessions each resetting abyss and then running a statement that reaches the SQL
  workers' memory limit, back to back over /ws, and 3 sockets sending large-reply steps and never reading. Its peak
  tree RSS is what `memory_mb` in openenv.yaml must hold.
- `shutdown`: SIGTERM with a tab open in headless Chromium: how long the server takes to exit.

Each row reports the server's RSS (with its SQL workers: the tree) idle, at its peak, and settled 75 s after the
attack (past the time unread results are kept), with threads and open files; the victim's event idle and under
attack. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from lab.speed.attack_latency import peak_memory, percentiles, tree_rss_mb
from metric_tracker_rl import server_process

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "lab" / "artifacts" / "debugger_attacks.json"
VICTIM = "127.0.0.3"
ATTACKERS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
SERVER_ENV = {
    "ENABLE_WEB_INTERFACE": "true",
    "MAX_SESSIONS_PER_CLIENT": "8",
    "SQL_WORKERS": "3",
    "METRIC_TRACKER_DEBUG": "",
}
# The reset event's inputs over the queue protocol: the tab's state first (the server holds it), then the form.
RESET_FORM = [None, "easy_two_spikes", "", "(default)", "(default)", "", "", "app_opens"]
ABYSS_FORM = [None, "(default)", "", "(default)", "abyss", "", "", "app_opens"]  # no named task: the tier's
SETTLE_S = 75.0  # past the debugger's UNREAD_TTL_S and its next sweep


# --- Gradio's queue protocol -------------------------------------------------------------------------------------


class Page:
    """One visitor's view of the page over Gradio's queue protocol, from a chosen loopback address."""

    def __init__(self, url: str, source: str) -> None:
        self.http = httpx.Client(
            base_url=f"{url}/web/gradio_api", timeout=120, transport=httpx.HTTPTransport(local_address=source)
        )
        config = httpx.get(f"{url}/web/config", timeout=60).json()
        self.fn_ids = {dep.get("api_name"): dep["id"] for dep in config["dependencies"]}

    def close(self) -> None:
        self.http.close()

    def join(self, api_name: str, data: list[Any], session_hash: str) -> httpx.Response:
        """Queue one event of a tab; the reply names the event (or refuses it)."""
        return self.http.post(
            "/queue/join",
            json={
                "fn_index": self.fn_ids[api_name],
                "data": data,
                "session_hash": session_hash,
                "event_data": None,
                "trigger_id": None,
            },
        )

    def results(self, session_hash: str) -> list[dict[str, Any]]:
        """Read the tab's messages until Gradio closes the stream; the completed events' messages."""
        done = []
        with self.http.stream("GET", "/queue/data", params={"session_hash": session_hash}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    done.append(message)
                if message.get("msg") in ("close_stream", "unexpected_error"):
                    break
        return done

    def call(self, api_name: str, data: list[Any], session_hash: str) -> dict[str, Any]:
        joined = self.join(api_name, data, session_hash)
        if joined.status_code != 200:
            return {"refused": joined.status_code, "detail": joined.text[:200]}
        return self.results(session_hash)[-1]


def new_tab() -> str:
    return secrets.token_hex(6)


def status_line(message: dict[str, Any]) -> str:
    """A completed event's first line of status (or why it was refused)."""
    if "refused" in message:
        return f"refused {message['refused']}"
    output = message.get("output", {})
    data = output.get("data") or [None, ""]
    text = data[1] if isinstance(data[1], str) else str(output.get("error", ""))
    return text.split("\n")[0][:60]


# --- the server and what it holds --------------------------------------------------------------------------------


def process_counts(pid: int) -> dict[str, float]:
    """The server process's threads and open files, and its tree's RSS."""
    status = Path(f"/proc/{pid}/status").read_text()
    threads = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))
    return {"threads": threads, "fds": len(os.listdir(f"/proc/{pid}/fd")), "tree_rss_mb": round(tree_rss_mb(pid), 1)}


@contextlib.contextmanager
def server(root: Path, extra: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    port = server_process.free_port()
    command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, **SERVER_ENV, **(extra or {})}
    env.pop("METRIC_TRACKER_SELF_URL", None)
    with tempfile.TemporaryFile() as log, server_process.serving(command, port, env, log, cwd=root) as process:
        yield f"http://127.0.0.1:{port}", process


# --- the victim --------------------------------------------------------------------------------------------------


def cheap_event_latencies(url: str, seconds: float) -> dict[str, float]:
    """Choosing a difficulty (no episode, no SQL), joined and read back, for `seconds`."""
    page, samples = Page(url, VICTIM), []
    tab = new_tab()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.perf_counter()
        reply = page.call("select_difficulty", ["hard"], tab)
        assert "refused" not in reply and reply.get("success"), reply
        samples.append(time.perf_counter() - start)
        time.sleep(0.05)
    page.close()
    return percentiles(samples)


# --- attacks -----------------------------------------------------------------------------------------------------


def undelivered(
    url: str,
    deadline: float,
    answers: Counter[str],
    addresses: list[str] = ATTACKERS,
    tabs: int = 7,
    form: list[Any] = RESET_FORM,
) -> None:
    """`addresses` x `tabs` tabs, each joining a reset every 0.2 s and never reading a result."""

    def tab(source: str) -> None:
        page, session = Page(url, source), new_tab()
        while time.monotonic() < deadline:
            answers[f"join {page.join('do_reset', form, session).status_code}"] += 1
            time.sleep(0.2)
        page.close()

    run_threads([functools.partial(tab, source) for source in addresses for _ in range(tabs)])


def refused_tabs(url: str, deadline: float, answers: Counter[str], loads: int = 150) -> None:
    """An address holding its 8 places loads the page `loads` times (each load a new tab whose reset is refused)."""
    from websockets.sync.client import connect

    source = ATTACKERS[0]
    port = int(url.rsplit(":", 1)[1])
    with contextlib.ExitStack() as stack:
        import socket

        for _ in range(8):
            sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
            ws = stack.enter_context(connect(f"ws://127.0.0.1:{port}/ws", sock=sock))
            ws.send(json.dumps({"type": "reset", "data": {"task_id": "easy_two_spikes"}}))
            ws.recv(timeout=60)
        page = Page(url, source)
        for _ in range(loads):
            if time.monotonic() > deadline:
                break
            answers[status_line(page.call("do_reset", RESET_FORM, new_tab()))] += 1
        page.close()


def slow_tabs(url: str, deadline: float, answers: Counter[str], tabs: int = 42) -> None:
    """42 tabs of one address reset at once, again and again: each reset's chart reads wait for the address's SQL
    turns, holding whatever the page gives an event meanwhile."""

    def tab() -> None:
        page, session = Page(url, ATTACKERS[0]), new_tab()
        while time.monotonic() < deadline:
            answer = status_line(page.call("do_reset", RESET_FORM, session))
            answers[answer] += 1
            if answer.startswith("refused"):
                time.sleep(0.5)
        page.close()

    run_threads([tab] * tabs)


def busy_tabs(url: str, deadline: float, answers: Counter[str], tabs: int = 16) -> None:
    """`tabs` tabs of one address, each firing the cheap page event back to back (reading each result)."""

    def tab() -> None:
        page, session = Page(url, ATTACKERS[0]), new_tab()
        while time.monotonic() < deadline:
            reply = page.call("select_difficulty", ["hard"], session)
            answers["refused" if "refused" in reply else "answered"] += 1
            if "refused" in reply:
                time.sleep(0.05)
        page.close()

    run_threads([tab] * tabs)


def worst(url: str, deadline: float, answers: Counter[str]) -> None:
    """Every heavy attack at once (see the module docstring)."""
    from lab.speed.attack_latency import outcome, silent_sockets, ws_from
    from lab.speed.attack_latency_pool import QUERIES

    abyss = {"type": "reset", "data": {"difficulty": "abyss"}}
    heavy = {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": QUERIES["memory"]}}}

    def session(source: str) -> None:
        with contextlib.suppress(Exception), ws_from(url, source) as ws:  # a refused session ends its thread
            while time.monotonic() < deadline:
                for message, kind in ((abyss, "reset"), (heavy, "memory-limit query")):
                    ws.send(json.dumps(message))
                    answers[f"ws {kind} " + outcome(json.loads(ws.recv(timeout=120)))] += 1

    tabs = functools.partial(undelivered, addresses=[f"127.0.0.{40 + n}" for n in range(12)], tabs=8, form=ABYSS_FORM)
    run_threads(
        [
            functools.partial(tabs, url, deadline, answers),
            functools.partial(silent_sockets, url, deadline, answers),
            *[functools.partial(session, f"127.0.0.{60 + n}") for n in range(8) for _ in range(8)],
        ]
    )


def run_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


ATTACKS: dict[str, tuple[str, Callable[[str, float, Counter[str]], None], dict[str, str]]] = {
    "undelivered": ("3 addresses x 7 tabs fire resets and never read a result", undelivered, {}),
    "undelivered_12": (
        "12 addresses x 8 tabs fire resets and never read a result",
        functools.partial(undelivered, addresses=[f"127.0.0.{40 + n}" for n in range(12)], tabs=8),
        {},
    ),
    "refused_tabs": ("an address at its cap of 8 loads the page 150 times", refused_tabs, {}),
    "slow_tabs": (
        "42 tabs of one address reset at once, again and again",
        slow_tabs,
        {"MAX_SESSIONS_PER_CLIENT": "64"},
    ),
    "busy_tabs": ("16 tabs of one address fire a cheap page event back to back", busy_tabs, {}),
    "worst": (
        "12 addresses x 8 abyss tabs unread + 8 x 8 sessions resetting abyss + 3 sockets never reading",
        worst,
        {},
    ),
}


def measure(root: Path, attack: str, seconds: float) -> dict[str, Any]:
    label, run, extra = ATTACKS[attack]
    with server(root, extra) as (url, process):
        Page(url, VICTIM).call("select_difficulty", ["hard"], new_tab())  # the page's first event is warm
        idle_counts = process_counts(process.pid)
        idle = cheap_event_latencies(url, min(seconds, 8.0))
        answers: Counter[str] = Counter()
        with peak_memory(process.pid) as peak:
            attacker = threading.Thread(target=run, args=(url, time.monotonic() + seconds, answers), daemon=True)
            attacker.start()
            time.sleep(3)  # the attack is under way
            under = cheap_event_latencies(url, max(seconds - 4, 2.0))
            attacker.join()
            after_counts = process_counts(process.pid)
        time.sleep(SETTLE_S)
        settled_counts = process_counts(process.pid)
    return {
        "attack": label,
        "attacker_answers": dict(answers),
        "victim_event_ms": {"idle": idle, "under": under},
        "server": {
            "idle": idle_counts,
            "after_attack": after_counts,
            "settled": settled_counts,
            "peak_tree_rss_mb": peak["mb"],
        },
    }


def shutdown_with_a_tab(root: Path) -> dict[str, Any]:
    """Seconds from SIGTERM to the server's exit while a tab is open in headless Chromium."""
    from playwright.sync_api import sync_playwright

    with server(root, {"METRIC_TRACKER_DRAIN_S": "2"}) as (url, process), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{url}/web/")
        page.get_by_text("ready", exact=False).first.wait_for(timeout=120_000)
        start = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
            exit_s: float | None = round(time.monotonic() - start, 2)
        except subprocess.TimeoutExpired:
            exit_s = None
        browser.close()
    return {"attack": "SIGTERM with one tab open (drain 2 s)", "exit_after_s": exit_s}


def measure_row(root: Path, attack: str, seconds: float) -> dict[str, Any]:
    return shutdown_with_a_tab(root) if attack == "shutdown" else measure(root, attack, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=[*ATTACKS, "shutdown"], action="append")
    parser.add_argument("--seconds", type=float, default=30.0, help="each attack's length")
    parser.add_argument("--server-root", type=Path, default=ROOT, help="the checkout whose server is attacked")
    parser.add_argument("--reference", type=Path, help="another checkout attacked the same way, each row beside")
    args = parser.parse_args()
    root = args.server_root.resolve()
    rows: dict[str, Any] = {}
    for attack in args.only or [*ATTACKS, "shutdown"]:
        row = measure_row(root, attack, args.seconds)
        if args.reference:
            row = {
                "attack": row.pop("attack"),
                "this": row,
                "reference": {
                    key: value
                    for key, value in measure_row(args.reference.resolve(), attack, args.seconds).items()
                    if key != "attack"
                },
            }
        rows[attack] = row
        print(json.dumps({attack: row}), flush=True)
    if root == ROOT:
        kept = json.loads(ARTIFACT.read_text())["rows"] if ARTIFACT.exists() else {}
        command = "uv run python -m lab.speed.debugger_attacks" + (" --reference REF" if args.reference else "")
        ARTIFACT.write_text(
            json.dumps({"command": command, "seconds": args.seconds, "rows": {**kept, **rows}}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
