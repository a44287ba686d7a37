"""Training scripts for TRL (the `train` dependency group): GRPO against a running server, SFT on trajectories."""
