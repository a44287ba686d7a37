"""The benchmark as an Inspect AI task (needs the optional `inspect` dependency group; `import metric_tracker_rl`
never imports this package)."""

from metric_tracker_rl.adapters.inspect_eval.metric_tracker import metric_tracker

__all__ = ["metric_tracker"]
