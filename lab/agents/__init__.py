"""The calibration's shortcuts and lower bounds: agents that game the benchmark (a fixed rule, the top-k dates and
their variants, the padders, the parent reporter, the seed replayer, the replay oracle, deep's short segment rule)
or bound it from below (random rows, mass submissions, the experts blind to segments or limited to one-dimension
breakdowns). They are not part of the package: importing this package registers them into
metric_tracker_rl.agents' registry, beside the reference agents, for lab/calibration/calibrate.py,
lab/calibration/dial_grid.py and the tests that play them."""

from lab.agents import (  # noqa: F401
    blind_experts,
    fixed_rule,
    gaming,
    lower_bounds,
    parent_reporter,
    replay_oracle,
    seed_replay,
    short_segment_rule,
)
