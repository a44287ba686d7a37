"""Inspect's smoke run: moved to `metric_tracker_rl.adapters.inspect_eval.smoke`;
this path stays importable (the same module object, so a patch through either name reaches the one
module)."""

import importlib
import runpy
import sys

if __name__ == "__main__":  # `python -m metric_tracker_rl.inspect_eval.smoke` as the docs once said
    runpy.run_module("metric_tracker_rl.adapters.inspect_eval.smoke", run_name="__main__")
else:
    sys.modules[__name__] = importlib.import_module("metric_tracker_rl.adapters.inspect_eval.smoke")
