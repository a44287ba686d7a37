"""A promotion (a discount shown on the menu) lifts the share of menu visitors who add to cart in one country for
one to three dates, on every platform and channel: no more people arrive, but more of those who come buy.

It is reported as a rate spike of menu_open_to_product_added_to_cart on the country, one row per date. The country
is drawn among those whose sample holds enough menu visits each date (LEAST_MENUS), and the drawn rise is sized to
be clear in the country's own data on each date, as every all-day incident of the tier is (up to LARGEST_LIFT)."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.anomalies.base import counts_from, full_day, rates_through_step, step_index
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.observed import observed_run
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.segments import Segment

DAYS = (1, 3)
LEAST_MENUS = 60.0  # menu visits the sample expects in the country on each date, at the least
HIGHEST_RATE = 0.95  # a lifted step converts at most this well in any hour
LARGEST_LIFT = 2.0  # the most a small country's rise is raised to, to be clear in its own data


class PromoSurge(IncidentKind):
    name = "promo_surge"
    family = "rate_spike_from_median"
    entity_names = ("menu_open_to_product_added_to_cart",)
    requires_fields = ("country",)
    segment_meaning = "one country"
    magnitude_meaning = "relative rise of the add-to-cart step in the country"
    magnitude_range = (0.7, 1.1)
    magnitude_bounds = (0.0, 3.0)
    description = (
        f"the add-to-cart step rises {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} in a country "
        f"for {DAYS[0]}-{DAYS[1]} dates"
    )
    definition = "more menu visitors add to cart in one country for a few dates (a promotion)"

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        entity = self.entity_names[0]
        step = step_index(entity)
        countries = [Segment(country=c) for c in world.plan.layout.values_of("country")]
        run = observed_run(
            world, rng, DAYS, countries, step, LEAST_MENUS, lambda s, d: self.clear_at(world, s, d, step, LARGEST_LIFT)
        )
        if run is None:
            return []
        days, segment = run
        lift = self.clear_in_segment(world, segment, days, step, self.draw_magnitude(world, rng), LARGEST_LIFT)
        neutral = (rates_through_step(step) | counts_from(step + 1)) - {(self.entity_type, entity)}
        cells = world.plan.cells(segment)
        out = []
        for day in days:
            highest = float(world.plan.step_rates[cells, day, :, step].max())
            factor = min(1.0 + lift, HIGHEST_RATE / max(highest, 1e-9))
            world.scale_step(segment, day, step, factor)
            record = self.record(
                day,
                entity,
                factor - 1.0,
                full_day(),
                f"a promotion in {segment.label()}: {entity} rises by {factor - 1.0:.0%} all day",
                neutral,
            )
            out.append(self.run_incident(record, segment, days))
        return out


register_incident_kind(PromoSurge())
