"""Dense confounding: context items beside an incident that overlap its dates but do not explain it.

A share of an episode's incidents (the tier's `confounder_share`) each get one or two of:
- an experiment whose arm overlaps the incident's cuboid but targets another step (cart or checkout, as every
  experiment does), or one that targets the incident's own step in a sibling arm (one field's value differs, so it
  shares no traffic with the incident);
- a public holiday in a country the incident's cuboid does not hold;
- a campaign in a channel or country the incident's cuboid does not hold.

Each is the benign change its table describes (the experiment's intended effect, here a fall; the holiday's lower
traffic and weekend-like hours; the campaign's extra traffic), on dates that overlap the incident's first date.
What context explains is the published rule: an experiment, the change of its target step in its arm; a campaign,
its traffic and, in a cuboid that holds it with other traffic, that cuboid's conversion; a holiday, its country's
traffic and hours. So a confounder is kept only where it explains none of the incidents on its dates: an
experiment's target step is no entity an incident reports or moves on its dates, unless its arm shares no traffic
with that incident's cuboid; a holiday's country and a campaign's channel and country share no traffic with any
incident's cuboid on its dates. Behind the truth wall: it reads the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from metric_tracker_rl.catalog.published import FUNNEL_STEPS
from metric_tracker_rl.catalog.seeding import derive_rng
from metric_tracker_rl.generation.kinds import SegmentFluctuation, SegmentIncident, date_entities
from metric_tracker_rl.generation.kinds.campaign import CAMPAIGN_CHANNELS
from metric_tracker_rl.generation.kinds.campaign import RUN_DAYS as CAMPAIGN_DAYS
from metric_tracker_rl.generation.kinds.cuboid import field_values, leaf_mask
from metric_tracker_rl.generation.kinds.experiment_effect import INTENDED_EFFECT, RUN_DAYS, TARGET_STEPS
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.context import Campaign, ContextRow, Experiment, Holiday
from metric_tracker_rl.world.funnel import WEEKEND_HOUR_SHARE, window_calendar
from metric_tracker_rl.world.segments import Segment, holiday_days

HOLIDAY_FALL = (0.15, 0.35)  # a country holiday's traffic fall (the country_holiday kind's range)
CAMPAIGN_LIFT = (0.5, 1.5)  # a campaign's traffic rise (the campaign kind's range)
MOST_PER_INCIDENT = 2
# What places one sort of confounder beside an incident (None where none fits).
Maker = Callable[
    [SegmentWorld, SegmentIncident, Sequence[SegmentIncident], list[ContextRow], np.random.Generator],
    SegmentFluctuation | None,
]


def place_confounders(
    world: SegmentWorld, incidents: Sequence[SegmentIncident], fluctuations: Sequence[SegmentFluctuation], share: float
) -> list[SegmentFluctuation]:
    """For each incident (its first date), with chance `share`, one or two context items that overlap its dates
    and explain none of the incidents on them (see the module's docstring); each from the incident's own stream."""
    placed: list[SegmentFluctuation] = []
    firsts = [i for i in incidents if i.record.continues is None]
    for index, incident in enumerate(firsts):
        rng = derive_rng(world.key, "confounders", index)
        if rng.random() >= share:
            continue
        wanted = int(rng.integers(1, MOST_PER_INCIDENT + 1))
        makers: list[Maker] = [
            _wrong_step_experiment,
            _sibling_arm_experiment,
            _other_country_holiday,
            _other_scope_campaign,
        ]
        for make in [makers[int(i)] for i in rng.permutation(len(makers))]:
            if wanted == 0:
                break
            context = [row for f in [*fluctuations, *placed] for row in f.context]
            made = make(world, incident, incidents, context, rng)
            if made is not None:
                placed.append(made)
                wanted -= 1
    return placed


def _run_over(world: SegmentWorld, day: int, lengths: tuple[int, int], rng: np.random.Generator) -> list[int]:
    """A run of dates of a drawn length that holds `day`, inside the window."""
    length = int(rng.integers(lengths[0], lengths[1] + 1))
    start = min(max(day - int(rng.integers(length)), 0), world.plan.num_days - length)
    return list(range(start, start + length))


def shares_traffic(world: SegmentWorld, a: Segment, b: Segment) -> bool:
    """Whether two cuboids hold a leaf in common."""
    return bool((leaf_mask(world, a) & leaf_mask(world, b)).any())


def _on_dates(incidents: Sequence[SegmentIncident], days: list[int]) -> list[SegmentIncident]:
    return [i for i in incidents if i.record.day in days]


def experiment_beside(
    world: SegmentWorld,
    incident: SegmentIncident,
    incidents: Sequence[SegmentIncident],
    context: list[ContextRow],
    rng: np.random.Generator,
    arm: Segment,
    steps: Sequence[str],
) -> SegmentFluctuation | None:
    """An experiment on `arm` over dates holding the incident's first date, targeting one of `steps` that explains
    no incident on its dates; its intended effect (a fall) applied."""
    days = _run_over(world, incident.record.day, RUN_DAYS, rng)
    iso = window_calendar(world.plan.num_days).iso_dates
    clear = [
        step
        for step in steps
        if all(
            step not in date_entities([i], i.record.day, iso, context) or not shares_traffic(world, arm, i.segment)
            for i in _on_dates(incidents, days)
        )
        and all(step not in date_entities([], day, iso, context) for day in days)
    ]
    if not clear or not leaf_mask(world, arm).any():
        return None
    step = pick(clear, rng)
    effect = -float(rng.uniform(*INTENDED_EFFECT))
    for day in days:
        world.scale_step(arm, day, FUNNEL_STEPS.index(step), 1.0 + effect)
    row = Experiment(
        f"exp_{int(rng.integers(1000, 10000))}",
        arm.platform,
        arm.country,
        arm.channel,
        arm.user_type,
        step,
        iso[days[0]],
        iso[days[-1]],
    )
    return SegmentFluctuation(
        "experiment_effect",
        days[0],
        arm,
        f"experiment {row.experiment} beside an incident changes {step} by {effect:+.0%} in "
        f"its arm from {row.start_date} to {row.end_date}, as intended",
        False,
        (row,),
    )


def _wrong_step_experiment(
    world: SegmentWorld,
    incident: SegmentIncident,
    incidents: Sequence[SegmentIncident],
    context: list[ContextRow],
    rng: np.random.Generator,
) -> SegmentFluctuation | None:
    """An experiment whose arm overlaps the incident's cuboid (one or two of its fields) on another step."""
    named = {f: v for f, v in incident.segment.named().items() if f != "app_version"}
    if not named:
        named = {"platform": incident.segment.platform or "web"}
    fields = [str(f) for f in rng.permutation(sorted(named))][: int(rng.integers(1, min(2, len(named)) + 1))]
    arm = Segment(**{f: named[f] for f in fields})
    steps = [FUNNEL_STEPS[s] for s in TARGET_STEPS if FUNNEL_STEPS[s] != incident.record.entity_name]
    return experiment_beside(world, incident, incidents, context, rng, arm, steps)


def _sibling_arm_experiment(
    world: SegmentWorld,
    incident: SegmentIncident,
    incidents: Sequence[SegmentIncident],
    context: list[ContextRow],
    rng: np.random.Generator,
) -> SegmentFluctuation | None:
    """An experiment on the incident's own step in a sibling arm: the incident's cuboid with one field's value
    changed (it shares no traffic with the incident)."""
    step = incident.record.entity_name
    named = {f: v for f, v in incident.segment.named().items() if f != "app_version"}
    if step not in [FUNNEL_STEPS[s] for s in TARGET_STEPS] or not named:
        return None
    field = pick(sorted(named), rng)
    others = [v for v in field_values(world, field) if v != named[field]]
    arm = Segment(**{**named, field: pick(others, rng)})
    return experiment_beside(world, incident, incidents, context, rng, arm, [step])


def _other_country_holiday(
    world: SegmentWorld,
    incident: SegmentIncident,
    incidents: Sequence[SegmentIncident],
    context: list[ContextRow],
    rng: np.random.Generator,
) -> SegmentFluctuation | None:
    """A public holiday on the incident's first date in a country no incident of that date holds."""
    day = incident.record.day
    if day in holiday_days(world.plan.num_days) or any(
        isinstance(row, Holiday) for row in context if getattr(row, "date", None) == _iso(world, day)
    ):
        return None
    countries = [
        c
        for c in world.plan.layout.values_of("country")
        if not any(shares_traffic(world, Segment(country=c), i.segment) for i in _on_dates(incidents, [day]))
    ]
    if not countries:
        return None
    country = pick(countries, rng)
    fall = float(rng.uniform(*HOLIDAY_FALL))
    cells = world.plan.cells(Segment(country=country))
    traffic = world.plan.traffic
    traffic[cells, day] = traffic[cells, day].sum(axis=-1, keepdims=True) * (1.0 - fall) * WEEKEND_HOUR_SHARE
    return SegmentFluctuation(
        "country_holiday",
        day,
        Segment(country=country),
        f"a public holiday in {country} beside an incident: traffic fell {fall:.0%}, weekend-like hours",
        False,
        (Holiday(_iso(world, day), country, f"{country} public holiday"),),
    )


def _other_scope_campaign(
    world: SegmentWorld,
    incident: SegmentIncident,
    incidents: Sequence[SegmentIncident],
    context: list[ContextRow],
    rng: np.random.Generator,
) -> SegmentFluctuation | None:
    """A campaign over the incident's first date in a paid channel and country that share no traffic with any
    incident on its dates."""
    days = _run_over(world, incident.record.day, CAMPAIGN_DAYS, rng)
    scopes = [
        Segment(country=c, channel=ch) for c in world.plan.layout.values_of("country") for ch in CAMPAIGN_CHANNELS
    ]
    clear = [s for s in scopes if not any(shares_traffic(world, s, i.segment) for i in _on_dates(incidents, days))]
    if not clear:
        return None
    scope = pick(clear, rng)
    lift = float(rng.uniform(*CAMPAIGN_LIFT))
    for day in days:
        world.scale_traffic(scope, day, 1.0 + lift)
    assert scope.channel is not None and scope.country is not None
    row = Campaign(
        f"cmp_{int(rng.integers(1000, 10000))}",
        scope.channel,
        scope.country,
        _iso(world, days[0]),
        _iso(world, days[-1]),
    )
    return SegmentFluctuation(
        "campaign",
        days[0],
        scope,
        f"campaign {row.campaign} beside an incident lifts "
        f"{scope.label()} traffic by {lift:.0%} from {row.start_date} to {row.end_date}",
        True,
        (row,),
    )


def _iso(world: SegmentWorld, day: int) -> str:
    return window_calendar(world.plan.num_days).iso_dates[day]
