"""Every framework adapter, in one place. Nothing here is imported by `import metric_tracker_rl`: each needs its
framework (an optional dependency group) and is imported by name.

- `trl`: `MetricTrackerToolEnv`, the class for TRL's `environment_factory`.
- `inspect_eval`: the benchmark as an Inspect AI task (the `inspect_ai` entry point).
- `openenv_harness`: OpenEnv's harness layer, MCP rollouts for TRL's async GRPO.
- `session`: one episode played step by step, in process or over the client (what every harness drives);
  `transcript`: an episode as a chat transcript (inference.py's SFT records); `baseline_log`: inference.py's log lines.

Two adapters live outside the package, because they cannot be imported with it: `integrations/verifiers/` is a
project of its own (verifiers pins mcp 2, OpenEnv needs mcp below 2; it talks to the server over the network only),
and `integrations/nemo_gym/` is a configuration file NeMo Gym reads.
"""
