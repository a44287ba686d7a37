"""Replicas behind HAProxy (deploy/haproxy.cfg) on this machine: episodes per second with 1 and 2 replicas, and
the time from a replica's death to every rollout running again.

    uv run python -m lab.speed.scale_out [--sessions 16] [--duration 20]

Needs Debian's haproxy. Each session plays the scripted agent's episodes back to back through the proxy (as
lab/speed/episodes.py does against one server). Then, with two replicas and every session holding an episode,
one replica is killed (SIGKILL, as an out-of-memory kill): the recovery time runs from the kill until every
session has reset a new episode through the proxy and taken a step in it. On a 2-core machine the replicas,
the proxy and the load generator share the same two cores, so the ratio shows the overhead of the layout more
than the gain a second machine would bring.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from lab.speed.episodes import _scripted_episode
from lab.speed.load import request
from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.server_process import free_port, healthy, serving

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "haproxy.cfg"


@contextlib.contextmanager
def replicas(count: int) -> Iterator[list[tuple[int, subprocess.Popen]]]:
    """`count` servers on free loopback ports with one shared secret; yields (port, process) pairs."""
    env = {
        **os.environ,
        "ENABLE_WEB_INTERFACE": "false",
        "METRIC_TRACKER_SECRET": "benchmark-shared-secret",
        "MAX_CONCURRENT_ENVS": "256",
    }
    with contextlib.ExitStack() as stack:
        started = []
        for _ in range(count):
            port = free_port()
            log = stack.enter_context(tempfile.TemporaryFile())
            command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port), "--no-web"]
            started.append((port, stack.enter_context(serving(command, port, env, log, cwd=ROOT))))
        yield started


@contextlib.contextmanager
def haproxy_in_front(ports: list[int], config: Path = CONFIG) -> Iterator[tuple[str, str]]:
    """HAProxy with `config` (the shipped configuration) in front of the replica ports (REPLICA_2 repeats the first
    port when there is one replica); yields (its URL, its statistics URL in CSV). The proxy tests use it too."""
    if shutil.which("haproxy") is None:
        raise RuntimeError("HAProxy is not installed: apt-get install haproxy")
    listen, stats = free_port(), free_port()
    targets = ports if len(ports) > 1 else ports * 2
    env = {
        **os.environ,
        "LISTEN_ADDR": f"127.0.0.1:{listen}",
        "STATS_ADDR": f"127.0.0.1:{stats}",
        **{f"REPLICA_{i + 1}": f"127.0.0.1:{port}" for i, port in enumerate(targets)},
    }
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(["haproxy", "-db", "-f", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{listen}"
            deadline = time.monotonic() + 30
            while not healthy(url, timeout_s=1.0):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"HAProxy did not serve: {log.read().decode(errors='replace')[-2000:]}")
                time.sleep(0.2)
            time.sleep(2.5)  # both replicas pass their health checks (rise 2, inter 1 s)
            yield url, f"http://127.0.0.1:{stats}/stats;csv"
        finally:
            process.terminate()
            process.wait(timeout=10)


async def _load(ws_url: str, sessions: int, duration_s: float) -> tuple[int, list[str]]:
    episodes, errors = 0, []
    end = time.monotonic() + duration_s

    async def session(index: int) -> None:
        nonlocal episodes
        k = 0
        try:
            async with connect(ws_url, max_size=None, open_timeout=60) as ws:
                while time.monotonic() < end:
                    await _scripted_episode(ws, 7_000_000 + index * 100_000 + k, DIFFICULTIES[k % 3])
                    if time.monotonic() <= end:
                        episodes += 1
                    k += 1
        except Exception as exc:  # noqa: BLE001 - counted, never aborting the other sessions
            errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(session(i) for i in range(sessions)))
    return episodes, errors


def episodes_per_second(replica_count: int, sessions: int, duration_s: float) -> float:
    with replicas(replica_count) as started, haproxy_in_front([port for port, _ in started]) as (url, _):
        episodes, errors = asyncio.run(_load(url.replace("http://", "ws://") + "/ws", sessions, duration_s))
    if errors:
        raise RuntimeError(f"{len(errors)} session(s) failed: {errors[:3]}")
    rate = episodes / duration_s
    print(f"{replica_count} replica(s), {sessions} sessions: {rate:.1f} episodes/s", file=sys.stderr, flush=True)
    return rate


async def _recovery(ws_url: str, sessions: int, kill: Any) -> float:
    """Every session holds an episode; `kill()` ends a replica; each session then resets until it can play a
    step again. Returns the seconds from the kill until the last session runs again."""
    sockets = [await connect(ws_url, max_size=None, open_timeout=60) for _ in range(sessions)]
    for index, ws in enumerate(sockets):
        await request(ws, {"type": "reset", "data": {"seed": index, "difficulty": "easy"}})
    kill()
    killed = time.monotonic()

    async def run_again(index: int, ws: Any) -> float:
        while True:
            try:
                await request(ws, {"type": "step", "data": {"analysis_method": "get_annotations"}})
                return time.monotonic()
            except Exception:  # noqa: BLE001 - the session died with its replica: open a new one
                with contextlib.suppress(Exception):
                    await ws.close()
                await asyncio.sleep(0.05)
                with contextlib.suppress(Exception):
                    ws = await connect(ws_url, max_size=None, open_timeout=10)
                    await request(ws, {"type": "reset", "data": {"seed": 1000 + index, "difficulty": "easy"}})

    times = await asyncio.gather(*(run_again(i, ws) for i, ws in enumerate(sockets)))
    for ws in sockets:
        with contextlib.suppress(Exception):
            await ws.close()
    return max(times) - killed


def recovery_seconds(sessions: int) -> float:
    with replicas(2) as started, haproxy_in_front([port for port, _ in started]) as (url, _):
        victim = started[0][1]
        seconds = asyncio.run(_recovery(url.replace("http://", "ws://") + "/ws", sessions, victim.kill))
    print(
        f"replica killed with {sessions} sessions open: every session ran again after {seconds:.2f} s",
        file=sys.stderr,
        flush=True,
    )
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per layout")
    args = parser.parse_args(argv)
    one = episodes_per_second(1, args.sessions, args.duration)
    two = episodes_per_second(2, args.sessions, args.duration)
    recovery = recovery_seconds(args.sessions)
    print(
        json.dumps(
            {
                "sessions": args.sessions,
                "duration_s": args.duration,
                "one_replica_per_s": one,
                "two_replicas_per_s": two,
                "ratio": two / one,
                "recovery_s": recovery,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
