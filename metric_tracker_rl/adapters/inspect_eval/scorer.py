"""The scorer: the episode's score as the server computed it (the sum of its rewards; 0 when nothing was graded),
with the last graded submission's reward breakdown as metadata."""

from __future__ import annotations

from inspect_ai.scorer import Score, Scorer, Target, grouped, mean, scorer, stderr
from inspect_ai.solver import TaskState

from metric_tracker_rl.adapters.inspect_eval.episode import EpisodeRecord


@scorer(metrics=[mean(), stderr(), grouped(mean(), "difficulty", name_template="{group_name}_mean")])
def episode_score() -> Scorer:
    async def score(state: TaskState, target: Target) -> Score:
        record = state.store_as(EpisodeRecord)
        value = record.score
        if record.graded_submissions:
            explanation = record.last_message
        else:
            explanation = f"nothing was graded in {len(record.rewards)} steps: the score is 0"
        return Score(
            value=value,
            explanation=explanation,
            metadata={
                "reward_breakdown": record.reward_breakdown,
                "rewards": record.rewards,
                "steps": len(record.rewards),
                "graded_submissions": record.graded_submissions,
                "done": record.done,
                "reset_kwargs": record.reset_kwargs,
                "config": record.config,
            },
        )

    return score
