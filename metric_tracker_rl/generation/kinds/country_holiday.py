"""Benign: a public holiday in one country, listed in the holidays table: that country's traffic falls and
follows a weekend-like daily pattern."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.kinds.base import BenignKind, SegmentFluctuation, register_benign_kind
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.context import Holiday
from metric_tracker_rl.world.funnel import WEEKEND_HOUR_SHARE, window_calendar
from metric_tracker_rl.world.segments import Segment


class CountryHoliday(BenignKind):
    name = "country_holiday"
    segment_meaning = "one country"
    magnitude_meaning = "relative fall of the country's traffic over the day"
    magnitude_range = (0.15, 0.35)
    description = (
        f"traffic falls {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} with a weekend-like "
        "daily pattern; the holidays table lists it"
    )
    magnitude_bounds = (0.0, 0.9)
    keeps_conversion = False  # the weekend's hours weigh late-night sessions, which convert a little lower
    needs_context = True

    def apply(self, world: SegmentWorld, day: int, rng: np.random.Generator) -> tuple[Segment, str]:
        segment = Segment(country=pick(world.plan.layout.values_of("country"), rng))
        fall = self.draw_magnitude(world, rng)
        traffic = world.plan.traffic
        cells = world.plan.cells(segment)
        traffic[cells, day] = traffic[cells, day].sum(axis=-1, keepdims=True) * (1.0 - fall) * WEEKEND_HOUR_SHARE
        return segment, f"a public holiday in {segment.country}: traffic fell {fall:.0%}, weekend-like hours"

    def place(self, world: SegmentWorld, rng: np.random.Generator) -> SegmentFluctuation | None:
        fluctuation = super().place(world, rng)
        if fluctuation is None:
            return None
        date = window_calendar(world.plan.num_days).iso_dates[fluctuation.day]
        country = fluctuation.segment.country
        assert country is not None
        holiday = Holiday(date, country, f"{country} public holiday")
        return SegmentFluctuation(
            self.name, fluctuation.day, fluctuation.segment, fluctuation.description, self.keeps_conversion, (holiday,)
        )


register_benign_kind(CountryHoliday())
