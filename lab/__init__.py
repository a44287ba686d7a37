"""The lab: what measures and calibrates the environment, beside the package and never inside it. It imports
metric_tracker_rl as any user would; the package never imports it (an import contract says so), and the wheel leaves
it out.

- agents/: the calibration's shortcuts, lower bounds and analysts, in the lab's own registry (agents.registry).
- calibration/: the sweeps that hold the tiers to their targets, the replays of the kept model transcripts.
- speed/: the performance, load and attack measurements.
- pictures/: the figures the docs show (written under docs/images/).
- docs_blocks.py: the renderer of the docs' generated tables.
- artifacts/: the kept outputs; tests/: the lab's tests (`uv run pytest lab/tests`).

Run a module with `uv run python -m lab.<group>.<module>`, e.g. `uv run python -m lab.calibration.calibrate`."""
