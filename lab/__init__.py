"""Repository tools that measure the environment (calibration of the reference agents, performance);
not part of the package. Run with `uv run python -m lab.speed.run` or `uv run python -m lab.calibration.calibrate`."""
