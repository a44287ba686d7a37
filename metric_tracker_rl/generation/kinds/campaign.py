"""Benign: a marketing campaign brings more low-intent traffic from one paid channel in one country for a few
dates (a mix effect: that channel's traffic there rises, its own conversion stays, the aggregate's falls); the
campaigns table lists it."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.kinds.base import BenignKind, SegmentFluctuation, register_benign_kind
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.context import Campaign
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.segments import Segment

RUN_DAYS = (2, 5)
CAMPAIGN_CHANNELS = ("paid_social", "paid_search")  # the low-intent channels a campaign buys


class MarketingCampaign(BenignKind):
    name = "campaign"
    segment_meaning = "a paid channel in one country"
    magnitude_meaning = "relative rise of the channel's traffic in the country"
    magnitude_range = (0.5, 1.5)
    description = (
        f"its traffic rises {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} for "
        f"{RUN_DAYS[0]}-{RUN_DAYS[1]} dates, its own conversion as usual; the campaigns table lists it"
    )
    magnitude_bounds = (0.0, 4.0)
    keeps_conversion = True  # every leaf's own conversion (a cell's moves with its mix)
    needs_context = True

    def place(self, world: SegmentWorld, rng: np.random.Generator) -> SegmentFluctuation | None:
        days = world.calendar.draw_run(rng, RUN_DAYS)
        if not days:
            return None
        segment = Segment(
            country=pick(world.plan.layout.values_of("country"), rng), channel=pick(CAMPAIGN_CHANNELS, rng)
        )
        lift = self.draw_magnitude(world, rng)
        for day in days:
            world.scale_traffic(segment, day, 1.0 + lift)
        dates = window_calendar(world.plan.num_days).iso_dates
        assert segment.channel is not None and segment.country is not None
        row = Campaign(
            f"cmp_{int(rng.integers(1000, 10000))}", segment.channel, segment.country, dates[days[0]], dates[days[-1]]
        )
        return SegmentFluctuation(
            self.name,
            days[0],
            segment,
            f"campaign {row.campaign} lifts {segment.label()} traffic by {lift:.0%} from "
            f"{row.start_date} to {row.end_date}",
            self.keeps_conversion,
            (row,),
        )


register_benign_kind(MarketingCampaign())
