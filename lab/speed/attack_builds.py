"""lab.speed.attack_strangers's rows on episode builds and places (its module docstring says how to run them):

- audit_builds: 43 audit sessions reset at once from 6 never-seen addresses (a trainer's rollouts), while the
  victim loops its cheap query and, in a process of its own, a known client resets a frontier and an audit
  episode in turn: the builders' resets, the victim's queries, the known client's resets, the server's memory.
- parade_builds: every PARADE_EVERY_S a never-seen address resets an audit episode and drops PARADE_HOLD_S later,
  while a known client resets a frontier and an audit episode in a loop: its resets, idle and under the parade.
- parade_places: never-seen addresses, one every PARADE_EVERY_S, each reset an audit episode and keep their
  session until the server is full; a known client holding KNOWN_HELD sessions then opens new ones: accepted or
  refused, and how long each took.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed

from lab.speed.attack_held_work import TIMEOUT_S, status
from lab.speed.attack_latency import peak_memory, tree_rss_mb
from lab.speed.loopback_server import ROOT, ask, never_seen_address, observation, spread, visitor_parade, ws_from

ARTIFACT = ROOT / "lab" / "artifacts" / "attack_builds.json"
ROWS = ("audit_builds", "parade_builds", "parade_places")
KNOWN = "127.0.0.5"  # the known client that resets (the victim, 127.0.0.3, queries)
BUILDERS = [f"127.0.10.{host}" for host in range(1, 7)]
AUDIT_SESSIONS = 43
PARADE_EVERY_S = 0.25
PARADE_HOLD_S = 3.0
PLACES_VISITORS = 100  # more than the server's 80 places
KNOWN_HELD = 2  # sessions the known client holds when it asks for more
NEW_SESSIONS = 3  # the new sessions it asks for, one after another
SEEDS = itertools.count(700_000)
SEED_LOCK = threading.Lock()


def reset_of(difficulty: str) -> dict[str, Any]:
    with SEED_LOCK:
        seed = next(SEEDS)
    return {"type": "reset", "data": {"difficulty": difficulty, "seed": seed}}


def timed_reset(ws: Any, difficulty: str) -> tuple[float, str]:
    began = time.perf_counter()
    reply = ask(ws, reset_of(difficulty), TIMEOUT_S)
    return time.perf_counter() - began, status(reply)


def _seconds(walls: list[float]) -> dict[str, Any]:
    return spread(walls, (50,), digits=2)


# --- roles (each a process of its own) ------------------------------------------------------------------------


def known_resets(url: str, seconds: float) -> dict[str, Any]:
    """The known client: a frontier reset, then an audit one, over one session, in a loop for `seconds` (at least
    one pair)."""
    walls: dict[str, list[float]] = {"frontier": [], "audit": []}
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    with ws_from(url, KNOWN, TIMEOUT_S) as ws:
        while not walls["audit"] or time.monotonic() < deadline:
            for difficulty in ("frontier", "audit"):
                wall, answer = timed_reset(ws, difficulty)
                walls[difficulty].append(wall)
                answers[f"{difficulty} {answer}"] += 1
            time.sleep(0.5)
    return {**{kind: _seconds(found) for kind, found in walls.items()}, "answers": dict(answers)}


def audit_builders(url: str, seconds: float) -> dict[str, Any]:
    """AUDIT_SESSIONS sessions from BUILDERS, each resetting an audit episode at once; their resets' walls."""
    walls: list[float] = []
    answers: Counter[str] = Counter()
    began = time.monotonic()

    def one(address: str) -> None:
        try:
            with ws_from(url, address, TIMEOUT_S) as ws:
                wall, answer = timed_reset(ws, "audit")
                walls.append(wall)
                answers[answer] += 1
        except (ConnectionClosed, OSError) as exc:
            answers[type(exc).__name__] += 1

    threads = [
        threading.Thread(target=one, args=(BUILDERS[index % len(BUILDERS)],), daemon=True)
        for index in range(AUDIT_SESSIONS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"resets_s": _seconds(walls), "answers": dict(answers), "all_built_s": round(time.monotonic() - began, 1)}


def _visitor(url: str, hold: Callable[[], None], answers: Counter[str]) -> Callable[[int], None]:
    """A parade's visitor: a never-seen address that sends an audit reset, then `hold()`s its session before
    dropping it."""

    def visit(index: int) -> None:
        try:
            with ws_from(url, never_seen_address(index), TIMEOUT_S, 0.5) as ws:
                ws.send(json.dumps(reset_of("audit")))
                answers["sent"] += 1
                hold()
        except (ConnectionClosed, OSError) as exc:
            answers[type(exc).__name__] += 1

    return visit


def parade_builds(url: str, seconds: float) -> dict[str, Any]:
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    visit = _visitor(url, lambda: time.sleep(PARADE_HOLD_S), answers)
    visitors = visitor_parade(visit, lambda _: time.monotonic() < deadline, PARADE_EVERY_S)
    return {"answers": dict(answers), "visitors": visitors}


def parade_places(url: str, seconds: float) -> dict[str, Any]:
    """PLACES_VISITORS never-seen addresses, one every PARADE_EVERY_S, each keeping its session for `seconds` past
    the last one's arrival (or until the server closes it)."""
    answers: Counter[str] = Counter()
    until = time.monotonic() + PLACES_VISITORS * PARADE_EVERY_S + seconds

    def hold() -> None:
        time.sleep(max(until - time.monotonic(), 0.0))

    visitors = visitor_parade(_visitor(url, hold, answers), lambda index: index < PLACES_VISITORS, PARADE_EVERY_S)
    return {"answers": dict(answers), "visitors": visitors}


def known_places(url: str, seconds: float) -> dict[str, Any]:
    """The known client opens KNOWN_HELD sessions (a frontier reset each), waits `seconds` (the parade fills the
    server meanwhile), then opens NEW_SESSIONS more one after another: how each went and how long it took."""
    held = [ws_from(url, KNOWN, TIMEOUT_S) for _ in range(KNOWN_HELD)]
    for ws in held:
        ask(ws, reset_of("frontier"), TIMEOUT_S)
    time.sleep(seconds)
    tries = []
    for _ in range(NEW_SESSIONS):
        began = time.perf_counter()
        try:
            ws = ws_from(url, KNOWN, TIMEOUT_S)
            held.append(ws)
            reply = ask(ws, reset_of("frontier"), TIMEOUT_S)
            seen = observation(reply)
            found = "accepted" if reply.get("type") == "observation" else f"refused: {seen['message']}"
        except ConnectionClosed as exc:
            found = f"closed {exc.rcvd.code if exc.rcvd else None}"
        tries.append({"answer": found[:160], "seconds": round(time.perf_counter() - began, 2)})
        time.sleep(1.0)
    for ws in held:
        ws.close()
    return {"new_sessions": tries}


ROLES: dict[str, Callable[[str, float], dict[str, Any]]] = {
    "known_resets": known_resets,
    "audit_builders": audit_builders,
    "parade_builds": parade_builds,
    "parade_places": parade_places,
    "known_places": known_places,
}


# --- rows (`run` starts a role's process; `result` waits for what it printed) -----------------------------------


def audit_builds_row(run: Callable[..., Any], result: Callable[[Any], dict[str, Any]]) -> Callable[..., Any]:
    def measure(url: str, pid: int, seconds: float) -> dict[str, Any]:
        idle_known = result(run("known_resets", url, 0.0))
        idle = result(run("victim", url, seconds))
        with peak_memory(pid) as peak:
            builders = run("audit_builders", url, seconds)
            time.sleep(2.0)  # the builds queue
            victim, known = run("victim", url, seconds), run("known_resets", url, seconds)
            row = {"attacker": result(builders), "under_attack": result(victim), "known_under": result(known)}
        return {
            **row,
            "idle": idle,
            "known_idle": idle_known,
            "memory_mb": {"peak": round(peak["mb"]), "after": round(tree_rss_mb(pid))},
        }

    return measure


def parade_builds_row(run: Callable[..., Any], result: Callable[[Any], dict[str, Any]]) -> Callable[..., Any]:
    def measure(url: str, pid: int, seconds: float) -> dict[str, Any]:
        idle = result(run("known_resets", url, seconds))
        parade = run("parade_builds", url, seconds + 5.0)
        time.sleep(3.0)
        under = result(run("known_resets", url, seconds))
        return {"known_idle": idle, "known_under": under, "attacker": result(parade)}

    return measure


def parade_places_row(run: Callable[..., Any], result: Callable[[Any], dict[str, Any]]) -> Callable[..., Any]:
    def measure(url: str, pid: int, seconds: float) -> dict[str, Any]:
        known = run("known_places", url, PLACES_VISITORS * PARADE_EVERY_S + 2.0)
        time.sleep(1.0)
        parade = run("parade_places", url, 15.0)
        return {"known": result(known), "attacker": result(parade)}

    return measure
