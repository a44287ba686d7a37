"""The rollout state the task and the tool server share (verifiers syncs it around every tool call)."""

from __future__ import annotations

from pydantic import Field
from verifiers.v1.state import State


class EpisodeState(State):
    base_url: str = ""
    session_id: str = ""
    request_timeout_s: float = 60.0
    rewards: list[float] = Field(default_factory=list)
    """Each tools/call's reward, in order."""
    score: float = 0.0
    """The episode's score as the server computed it, from the latest call (the sum of the rewards)."""
    done: bool = False
