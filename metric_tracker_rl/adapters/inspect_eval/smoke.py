"""An offline check that Inspect runs the task here, with no model: Inspect's mock model submits an empty report
on each sample. `uv run python -m metric_tracker_rl.adapters.inspect_eval.smoke` (the inspect group installed).

The mock model's token usage is given with each output: without it, mockllm counts tokens with an encoding it
downloads, so `inspect eval ... --model mockllm/model` needs a network the first time."""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

MOCK_MODEL = "mockllm/model"


def submits_an_empty_report(*_: Any) -> Any:
    """One mock completion: a submit_report call with no rows, its usage stated (nothing to download)."""
    from inspect_ai.model import ModelOutput, ModelUsage

    output = ModelOutput.for_tool_call(MOCK_MODEL, "submit_report", {"rows": []})
    output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--tasks", default="easy_two_spikes", help="comma-separated task ids")
    parser.add_argument(
        "--log-dir",
        default=None,
        help="where Inspect writes its log (default: a temporary directory, removed after the check)",
    )
    args = parser.parse_args(argv)
    if args.log_dir is not None:
        return smoke(args.tasks, args.log_dir, keep=True)
    with tempfile.TemporaryDirectory(prefix="inspect-smoke-") as log_dir:  # a check leaves nothing behind
        return smoke(args.tasks, log_dir, keep=False)


def smoke(tasks: str, log_dir: str, keep: bool) -> int:
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    from metric_tracker_rl.adapters.inspect_eval.metric_tracker import metric_tracker

    # The task itself, not its registered name: from the checkout, that name reads as a directory path.
    [log] = inspect_eval(
        metric_tracker(tasks=tasks),
        model=get_model(MOCK_MODEL, custom_outputs=submits_an_empty_report),
        log_dir=log_dir,
        display="none",
    )
    samples = log.samples or []
    where = log.location if keep else "not kept (--log-dir keeps it)"
    print(f"inspect smoke: status={log.status} samples={len(samples)} log={where}")
    return 0 if log.status == "success" and samples else 1


if __name__ == "__main__":
    raise SystemExit(main())
