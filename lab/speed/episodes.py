"""Full episodes per second over WebSocket: reset, the `scripted` agent's steps and its one graded submission,
beside the null environment doing the same number of messages per episode.

    uv run python -m lab.speed.episodes [--sessions 1,16] [--duration 6]

Each session runs episodes back to back on seeds of its own (difficulties in turn) until the window closes;
an episode counts when it finished inside the window. The null environment answers the same message count
(a reset and SCRIPTED_STEPS steps), so the ratio is our per-episode cost against the framework's floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect

from lab.speed.load import StartLine, request, serve
from metric_tracker_rl.agents.scripted import ScriptedAgent
from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.server_process import SERVER_MODULE
from metric_tracker_rl.view.observation import seen

SCRIPTED_STEPS = 6  # get_annotations, four generators, the graded report


@dataclass
class EpisodeCount:
    episodes: int = 0
    graded: int = 0
    errors: list[str] = field(default_factory=list)


def _observation(reply: dict[str, Any]) -> MetricTrackerRlObservation:
    if reply.get("type") != "observation":
        raise RuntimeError(f"{reply.get('type')}: {reply.get('data')}")
    data = reply["data"]
    return MetricTrackerRlObservation.model_validate(
        {**data["observation"], "reward": data.get("reward"), "done": data.get("done", False)}
    )


async def _scripted_episode(ws: Any, seed: int, difficulty: str) -> bool:
    """One episode of the scripted agent; True when its report was graded."""
    observation = _observation(await request(ws, {"type": "reset", "data": {"seed": seed, "difficulty": difficulty}}))
    agent = ScriptedAgent()
    agent.begin(seen(observation))
    while not observation.done and (action := agent.act(seen(observation))) is not None:
        message = {"type": "step", "data": action.model_dump(mode="json", exclude_none=True)}
        observation = _observation(await request(ws, message))
    return observation.status == "graded"


async def _null_episode(ws: Any) -> bool:
    await request(ws, {"type": "reset", "data": {}})
    for i in range(SCRIPTED_STEPS):
        await request(ws, {"type": "step", "data": {"note": f"step {i}"}})
    return True


async def _session(server: Any, index: int, start: StartLine, count: EpisodeCount, real: bool) -> None:
    arrived = False
    try:
        async with connect(server.ws_url, max_size=None, open_timeout=120) as ws:
            arrived = True
            await start.arrive()
            k = 0
            while time.perf_counter() < start.end:
                if real:
                    graded = await _scripted_episode(ws, 5_000_000 + index * 100_000 + k, DIFFICULTIES[k % 3])
                else:
                    graded = await _null_episode(ws)
                if time.perf_counter() <= start.end:
                    count.episodes += 1
                    count.graded += graded
                k += 1
    except Exception as exc:  # reported, never aborting the other sessions
        count.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        if not arrived:
            await start.arrive()


async def _window(server: Any, sessions: int, duration_s: float, real: bool) -> EpisodeCount:
    count = EpisodeCount()
    start = StartLine(server, sessions, duration_s)
    await asyncio.gather(start.watch_cpu(), *(_session(server, i, start, count, real) for i in range(sessions)))
    return count


def bench_episodes(session_counts: list[int], duration_s: float, rounds: int = 3) -> dict[str, Any]:
    """Both servers run at once; the load alternates between them in rounds (as in the step benchmark)."""
    rows = []
    with (
        serve(SERVER_MODULE, max(session_counts) + 8, "server_episodes") as real,
        serve("lab.speed.null_env", max(session_counts) + 8, "null_episodes") as null,
    ):
        for sessions in session_counts:
            totals = {"env": EpisodeCount(), "null": EpisodeCount()}
            for _ in range(rounds):
                for label, server in (("env", real), ("null", null)):
                    counted = asyncio.run(_window(server, sessions, duration_s / rounds, label == "env"))
                    totals[label].episodes += counted.episodes
                    totals[label].graded += counted.graded
                    totals[label].errors += counted.errors
            env, base = (totals[k].episodes / duration_s for k in ("env", "null"))
            graded_share = totals["env"].graded / max(totals["env"].episodes, 1)
            row = {
                "sessions": sessions,
                "env_episodes_per_s": env,
                "null_episodes_per_s": base,
                "ratio": env / max(base, 1e-9),
                "graded_share": graded_share,
                "errors": len(totals["env"].errors) + len(totals["null"].errors),
                "first_errors": (totals["env"].errors + totals["null"].errors)[:3],
            }
            rows.append(row)
            print(
                f"episodes {sessions:>3} sessions: {env:.1f}/s vs null {base:.1f}/s (ratio {row['ratio']:.2f}), "
                f"graded {row['graded_share']:.0%}, errors {row['errors']}",
                file=sys.stderr,
                flush=True,
            )
    return {"duration_s": duration_s, "rounds": rounds, "messages_per_episode": 1 + SCRIPTED_STEPS, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,16", help="concurrent WebSocket sessions")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of load per server and session count")
    args = parser.parse_args(argv)
    print(json.dumps(bench_episodes([int(s) for s in args.sessions.split(",")], args.duration), indent=2))


if __name__ == "__main__":
    main()
