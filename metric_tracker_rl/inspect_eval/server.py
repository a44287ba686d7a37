"""Inspect's `server`: moved to `metric_tracker_rl.adapters.inspect_eval.server`;
this path stays importable (the same module object, so a patch through either name reaches the one
module)."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("metric_tracker_rl.adapters.inspect_eval.server")
