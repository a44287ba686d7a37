"""verifiers 0.4.0's OpenEnv path against a running server, with scripted model replies instead of a model.

    /tmp/vf/bin/python integrations/verifiers/openenv_path.py http://127.0.0.1:8000 replies.json

Run it with the Python of a virtual environment that holds `verifiers==0.4.0` and `openenv==0.4.1` (the openenv
that verifiers resolves to), not this project's. It does what verifiers' `OpenEnvEnv` does for one episode:
reads the action schema from `/schema`, resets through openenv's `GenericEnvClient`, turns each reply into an
action with verifiers' own `parse_action`, steps it, and sums the rewards. Prints the schema's title, each graded
step, and the summed reward beside the episode's score."""

import asyncio
import json
import sys

import httpx
from openenv import GenericEnvClient
from verifiers.v1.tasksets.openenv.taskset import parse_action


async def play(base_url: str, replies: list[str], seed: int, difficulty: str) -> None:
    schema = httpx.get(f"{base_url}/schema", timeout=30).json()["action"]
    print("schema title:", schema.get("title"))
    total = 0.0
    async with GenericEnvClient(base_url=base_url) as client:
        result = await client.reset(seed=seed, difficulty=difficulty)
        for reply in replies:
            result = await client.step(parse_action(reply, schema))
            total += result.reward or 0.0
            if result.observation["status"] == "graded":
                print("graded: reward", result.reward, "done", result.done)
            if result.done:
                break
    print("summed reward:", total, "episode score:", result.observation.get("episode_score"))


if __name__ == "__main__":
    url, replies_path = sys.argv[1], sys.argv[2]
    seed, difficulty = (int(sys.argv[3]), sys.argv[4]) if len(sys.argv) > 4 else (7, "easy")
    with open(replies_path) as replies_file:
        asyncio.run(play(url, json.load(replies_file), seed, difficulty))
