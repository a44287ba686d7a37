"""The environment as a model sees it, in one import: every model-facing harness (inference.py's OpenAI loop, the
TRL environment class, SFT trajectories, an Inspect task) goes through these names, so they offer the same tools,
read calls the same way and show the model the same text. They live in three modules:

- `model_prompt`: `SYSTEM_PROMPT`, and the brief that opens an episode (`brief_data`, `first_prompt`);
- `model_tools`: the tools offered (`model_tools`, `openai_tools`, the submission tools) and a call read as an
  action (`tool_action`, `action_tool_call`);
- `model_view`: a step as text (`render_observation`), the structured view of that text (`seen`,
  `SeenObservation`) and that view read back from the text (`read_observation`).
"""

from metric_tracker_rl.model_prompt import FIRST_PROMPT_NEXT, SYSTEM_PROMPT, brief_data, first_prompt
from metric_tracker_rl.model_tools import (
    SUBMISSION_TOOLS,
    SUBMIT_GENERATORS,
    SUBMIT_REPORT,
    ModelTool,
    SubmitGeneratorsArgs,
    SubmitReportArgs,
    action_tool_call,
    model_schema,
    model_tools,
    openai_tools,
    tool_action,
)
from metric_tracker_rl.model_view import Feedback, SeenObservation, read_observation, render_observation, seen

__all__ = ["FIRST_PROMPT_NEXT", "SUBMISSION_TOOLS", "SUBMIT_GENERATORS", "SUBMIT_REPORT", "SYSTEM_PROMPT", "Feedback",
           "ModelTool", "SeenObservation", "SubmitGeneratorsArgs", "SubmitReportArgs", "action_tool_call",
           "brief_data", "first_prompt", "model_schema", "model_tools", "openai_tools", "read_observation",
           "render_observation", "seen", "tool_action"]
