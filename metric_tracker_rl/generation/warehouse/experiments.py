"""Experiments at the event grain: each experiment of the world's context tables has a treatment arm (a segment of
platform, country, channel and user type; a new user is one whose first touch falls in the window), and every
user of that arm active on the experiment's dates is assigned to it. Their events on those dates carry the
`experiment_variant` parameter, and `experiment_assignments` lists them: what the kinds did to the arm's rates
(an intended effect, or a breakage of another step) is then readable per assigned user."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.sql.columns import SqlTable
from metric_tracker_rl.world.context import Experiment
from metric_tracker_rl.world.events import VARIANTS, EventLog, reporting_day
from metric_tracker_rl.world.funnel import WINDOW_START

TREATMENT = VARIANTS.index("treatment")


def _date_index(iso: str) -> int:
    return int((np.datetime64(iso, "D") - np.datetime64(WINDOW_START, "D")).astype(int))


def arm_users(log: EventLog, experiment: Experiment) -> np.ndarray:
    """(U,) bool: the users of an experiment's arm (its named fields; None covers every value)."""
    users = log.users
    keep = np.ones(len(users.pseudo_ids), dtype=bool)
    for labels, wanted in (
        (users.platform, experiment.platform),
        (users.country, experiment.country),
        (users.channel, experiment.channel),
    ):
        if wanted is not None:
            keep &= labels.codes == (labels.values.index(wanted) if wanted in labels.values else -1)
    if experiment.user_type is not None:
        new = users.first_touch_day >= 0
        keep &= new if experiment.user_type == "new" else ~new
    return keep


def assign_experiments(log: EventLog, experiments: tuple[Experiment, ...]) -> tuple[EventLog, SqlTable]:
    """The log with each arm's events on its experiment's dates tagged treatment, and the assignments: one row per
    experiment and user with an event in it, with the first date of that user's events in it."""
    events = log.events
    variant = events.variant.copy()
    day = reporting_day(events.timestamp_us)
    user = log.sessions.user[events.session]
    names: list[str] = []
    assigned: list[np.ndarray] = []
    first_days: list[np.ndarray] = []
    for experiment in experiments:
        start, end = _date_index(experiment.start_date), _date_index(experiment.end_date)
        inside = arm_users(log, experiment)[user] & (day >= start) & (day <= end)
        variant[inside] = TREATMENT
        first = np.full(len(log.users.pseudo_ids), np.iinfo(np.int64).max)
        np.minimum.at(first, user[inside], day[inside])
        who = np.flatnonzero(first < np.iinfo(np.int64).max)
        names += [experiment.experiment] * len(who)
        assigned.append(who)
        first_days.append(first[who])
    who = np.concatenate(assigned) if assigned else np.zeros(0, dtype=np.int64)
    when = np.concatenate(first_days) if first_days else np.zeros(0, dtype=np.int64)
    table: SqlTable = {
        "experiment": np.array(names, dtype=object),
        "user_pseudo_id": log.users.pseudo_ids[who].astype(object),
        "variant": np.full(len(who), VARIANTS[TREATMENT], dtype=object),
        "assigned_date": np.datetime64(WINDOW_START, "D") + when.astype("timedelta64[D]"),
    }
    return replace(log, events=replace(events, variant=variant)), table
