"""The lab's agents, in the lab's own registry (lab.agents.registry.LAB_AGENTS), never the package's: the shortcuts
that game the benchmark (a fixed rule, the top-k dates and their variants, the padders, the parent reporter, the seed
replayer, the replay oracle, deep's short segment rule), the lower bounds (random rows, mass submissions, the experts
blind to segments or limited to one-dimension breakdowns), the scan analyst and its variations, and the warehouse's
baselines and model-like analyst. Importing this package registers every one of them; `registry.make_agent` plays
them and the package's reference agents alike."""

from lab.agents import (  # noqa: F401
    audit_generic,
    blind_experts,
    fixed_rule,
    gaming,
    lower_bounds,
    parent_reporter,
    replay_oracle,
    scan_analyst,
    seed_replay,
    short_segment_rule,
    warehouse_baselines,
    warehouse_model_like,
)
