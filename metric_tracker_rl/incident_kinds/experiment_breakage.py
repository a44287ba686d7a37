"""An experiment breaks a step it does not target in its treatment arm for as long as it runs (its targeted step
changes as intended as well); the experiments table lists the experiment, not the breakage."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.incident_kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.incident_kinds.experiment_effect import RUN_DAYS, apply_intended_effect, draw_experiment
from metric_tracker_rl.published import FUNNEL_STEPS
from metric_tracker_rl.segment_plan import SegmentWorld, pick


class ExperimentBreakage(IncidentKind):
    name = "experiment_breakage"
    family = "rate_drop_from_median"
    entity_names = FUNNEL_STEPS
    segment_meaning = "an experiment's treatment arm (a platform, a country or both, with 5% of the traffic)"
    magnitude_meaning = "relative fall of the step it does not target, in its arm"
    magnitude_range = (0.35, 0.55)  # past any intended effect, so the broken step is the one that moved most
    description = (f"a step it does not target falls in its arm on every date it runs ({RUN_DAYS[0]}-{RUN_DAYS[1]}, "
                   "one row each); the experiments table lists the experiment")
    magnitude_bounds = (0.0, 0.95)
    needs_context = True

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        # The arm stays on the cells until the ground truth reads a leaf cuboid's funnel.
        experiment = draw_experiment(world, rng, cells_only=True)
        if experiment is None:
            return []
        apply_intended_effect(world, experiment)
        broken = pick([step for step in FUNNEL_STEPS if step != experiment.row.target_step], rng)
        magnitude = self.draw_magnitude(world, rng)
        incidents = self.over_dates(world, experiment.arm, experiment.days, broken, magnitude, stream,
                                    f"experiment {experiment.row.experiment} (changes {experiment.row.target_step} by "
                                    f"{experiment.effect:+.0%} as intended) breaks {broken} in its arm")
        return [replace(incident, context=(experiment.row,)) if i == 0 else incident
                for i, incident in enumerate(incidents)]


register_incident_kind(ExperimentBreakage())
