"""Repository tools that measure the environment: calibration of reference agents, performance."""
