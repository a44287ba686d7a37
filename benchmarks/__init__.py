"""Benchmarks of metric_tracker_rl (run with `uv run python -m benchmarks.run`); not part of the package."""
