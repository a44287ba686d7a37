"""The Inspect AI task: moved to `metric_tracker_rl.adapters.inspect_eval`. This package stays importable: its
name re-exports the task, and each of its modules is the moved module itself (the same object), so a patch through
either name reaches the one module."""

# The module under this name first, then the task over it, as in the moved package: importing the module later
# would otherwise rebind `metric_tracker` here to the module.
import metric_tracker_rl.inspect_eval.metric_tracker  # noqa: F401
from metric_tracker_rl.adapters.inspect_eval import metric_tracker

__all__ = ["metric_tracker"]
