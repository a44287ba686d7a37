"""Payments fail for a block of hours in one country (on one platform or all) at a payment partner; the partner
status log carries a notice with those hours for a share of them (the episode's `note_share`).

Its evidence is a block of hours: its segment and block are drawn among those where each of the block's hours carries
enough orders to be read (`cuboid.block_readable`); in a sample whose hours are too few to read alone
(`SegmentWorld.raise_unclear`), on a partner's segment whose block, grown within the kind's hours, expects enough
orders as a whole (`PaymentFailure.widened`); where none can, none."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.catalog.dimensions import PLATFORMS
from metric_tracker_rl.generation.anomalies.base import draw_window
from metric_tracker_rl.generation.kinds.base import SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.cuboid import hour_arrivals, readable_placements
from metric_tracker_rl.generation.kinds.payment_failure import (
    CLEAR_BLOCK_ORDERS,
    HOUR_WINDOW,
    PAYMENT_STEP,
    PaymentFailure,
)
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.context import PARTNER_NOTICE_STATUS, PartnerNotice, partner_of
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.segments import Segment

# A partner's segment carries this share of all traffic at least: in a smaller one, a few hours' break in the
# afternoon lull is a handful of orders, which sampling alone moves as much.
MIN_TRAFFIC_SHARE = 0.08


def partner_segments(world: SegmentWorld) -> list[Segment]:
    """Where a payment partner fails (and posts notices): a whole country, or one platform in it, that carries
    MIN_TRAFFIC_SHARE of the traffic (so that a few hours' break shows at its own grain)."""
    traffic = world.plan.traffic.sum(axis=(1, 2))
    total = traffic.sum()
    segments = []
    for country in world.plan.layout.values_of("country"):
        candidates = [Segment(country=country), *(Segment(platform, country) for platform in PLATFORMS)]
        segments += [s for s in candidates if traffic[world.plan.cells(s)].sum() >= MIN_TRAFFIC_SHARE * total]
    return segments


class PartnerPaymentFailure(PaymentFailure):
    """The payment failure's family, entity and hours, on a partner's segment instead of a platform's version."""

    name = "partner_payment_failure"
    segment_meaning = "one country, on all platforms or one, where that carries 8% of the traffic"
    description = (
        f"a block of {PaymentFailure.magnitude_range[0]:.0f}-{PaymentFailure.magnitude_range[1]:.0f} "
        "hours; the partner status log has a notice with its hours for some"
    )
    definition = (
        "a payment partner fails: payments almost stop for a block of hours in one country, on all platforms or one"
    )
    needs_context = True
    requires_fields = ("country",)

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        day = world.calendar.draw(rng)
        if day is None:
            return []
        segments, length = partner_segments(world), round(self.draw_magnitude(world, rng))
        placements = readable_placements(world, segments, day, length, self.shortest_block(), PAYMENT_STEP, HOUR_WINDOW)
        if not placements and world.raise_unclear:  # a sample: no hour reads alone; where a whole block does
            placements = self.clear_blocks(world, segments, day, draw_window(rng, length, *HOUR_WINDOW))
        if not placements:
            return []
        segment, hours = pick(placements, rng)
        platform, country = segment.platform, segment.country
        assert country is not None
        incident = self.stop_payments(world, segment, day, hours, rng, f"payment partner {partner_of(country)} fails")
        if rng.random() < world.note_share:
            start, end = hours
            notice = PartnerNotice(
                partner_of(country),
                platform,
                country,
                window_calendar(world.plan.num_days).iso_dates[day],
                start,
                end,
                PARTNER_NOTICE_STATUS,
            )
            incident = replace(incident, context=(notice,))
        return [incident]

    def clear_blocks(
        self, world: SegmentWorld, segments: list[Segment], day: int, hours: tuple[int, int]
    ) -> list[tuple[Segment, tuple[int, int]]]:
        """Each segment with its block grown until it expects CLEAR_BLOCK_ORDERS orders, where the kind's longest
        block can (a smaller partner's segment cannot show a stop in the sample)."""
        grown = [(segment, self.widened(world, segment, day, hours)) for segment in segments]
        return [
            (segment, (start, end))
            for segment, (start, end) in grown
            if hour_arrivals(world, segment, day, PAYMENT_STEP)[start:end].sum() >= CLEAR_BLOCK_ORDERS
        ]


register_incident_kind(PartnerPaymentFailure())
