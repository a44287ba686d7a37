"""An app store features the app in one country for a date or two: a wave of real new users installs it from the
store on that mobile platform there (they arrive as organic new users) and converts as new organic users always
do. Every count of the platform in the country rises together; the other platform and countries carry on.

It is reported as an absolute spike of app_opens on the platform in the country, one row per date. The rise is
drawn for the segment's opens and carried by its organic new users alone (their opens scale by whatever factor
gives it); the segment is drawn among those whose sample expects enough opens each date for the rise to show
(LEAST_OPENS) and whose organic new users are enough of them that the factor stays believable (MOST_FACTOR)."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.anomalies.base import counts_from, full_day, rates_through_step
from metric_tracker_rl.generation.kinds.base import (
    OPENS,
    SHORT_RUN_CLEAR,
    IncidentKind,
    SegmentIncident,
    register_incident_kind,
)
from metric_tracker_rl.generation.kinds.observed import daily_arrivals, has_leaves, holding
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import Segment

DAYS = (1, 2)
MOBILE = ("ios", "android")
LEAST_OPENS = 40.0  # the segment's opens the sample expects on each date, at the least
MOST_FACTOR = 12.0  # the organic new users' opens grow at most this many times over
NEWCOMERS = {"channel": "organic", "user_type": "new"}  # who a store feature brings


class StoreFeature(IncidentKind):
    name = "store_feature"
    family = "absolute_spike_in_event_count"
    entity_names = ("app_opens",)
    requires_fields = ("platform", "country", "channel", "user_type")
    count_all_day = True
    segment_meaning = "one mobile platform in one country"
    magnitude_meaning = "relative rise of the segment's opens, carried by its organic new users"
    magnitude_range = (0.7, 1.4)
    magnitude_bounds = (0.05, 4.0)
    description = (
        f"{100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} more opens all day on a mobile platform "
        f"in a country for {DAYS[0]}-{DAYS[1]} dates, from organic new users who convert as usual"
    )
    definition = (
        "a wave of new users from an app store's feature arrives on one mobile platform in one country for "
        "a date or two; they convert as new users do"
    )

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        """`stream` is unused: the surge edits the leaves' traffic itself, from `rng`."""
        if not has_leaves(world):
            return []
        days = world.calendar.draw_run(rng, DAYS)
        if not days:
            return []
        rise = self.draw_magnitude(world, rng)
        segments = [
            Segment(platform=p, country=c)
            for p in world.plan.layout.values_of("platform")
            if p in MOBILE
            for c in world.plan.layout.values_of("country")
        ]
        rises = {s: self._sized(world, s, days, rise) for s in holding(world, segments, days, 0, LEAST_OPENS)}
        options = [
            s
            for s, sized in rises.items()
            if 1.0 + sized / _newcomer_share(world, s, days).min() <= MOST_FACTOR
            and self.clear_at(world, s, days, OPENS, sized, SHORT_RUN_CLEAR)
        ]
        if not options:
            return []
        segment = pick(options, rng)
        rise = rises[segment]
        newcomers = Segment(**segment.named(), **NEWCOMERS)
        neutral = counts_from(1) | rates_through_step(0) | rates_through_step(1)  # new users' mix in the rates
        out = []
        for day, share in zip(days, _newcomer_share(world, segment, days), strict=True):
            world.scale_traffic(newcomers, day, 1.0 + rise / share)
            record = self.record(
                day,
                self.entity_names[0],
                rise,
                full_day(),
                f"an app store features the app in {segment.label()}: {rise:.0%} more opens all day, "
                "from organic new users who convert as usual",
                neutral,
            )
            out.append(self.run_incident(record, segment, days))
        return out

    def _sized(self, world: SegmentWorld, segment: Segment, days: list[int], rise: float) -> float:
        """The drawn rise, raised (world.only_clear) where it would not be clear in the segment's own opens on its
        dates, one or two (SHORT_RUN_CLEAR)."""
        if not world.only_clear:
            return rise
        largest = self.magnitude_bounds[1]
        clear = self.clear_in_segment(world, segment, days, OPENS, rise, largest) * SHORT_RUN_CLEAR
        return max(rise, min(clear, largest))


def _newcomer_share(world: SegmentWorld, segment: Segment, days: list[int]) -> np.ndarray:
    """(len(days),) the share of the segment's opens its organic new users hold on each date."""
    newcomers = daily_arrivals(world, Segment(**segment.named(), **NEWCOMERS), days, 0)
    return newcomers / np.maximum(daily_arrivals(world, segment, days, 0), 1e-9)


register_incident_kind(StoreFeature())
