"""The audit expert's second incident and the findings it reads beside others: a one-date fall the scans found is read
again on its own cuboid (a parent where the rest of the parent fell with it, a child where the rest did not), and an
outage on a date of a lasting fall of sessions beside its segment is that fall's date."""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from metric_tracker_rl.agents.audit_expert import ALL_FINDERS, AuditInvestigation
from metric_tracker_rl.agents.audit_second_incident import LASTING_Z, SECOND_Z, rest_fell
from metric_tracker_rl.agents.warehouse_findings import (
    COUNT_DROP,
    DATA_QUALITY,
    FUNNEL_BREAK,
    RATE_DROP,
    Finding,
    Rows,
    Statement,
    dedupe,
)
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

DATE = "2026-03-10"
PAYMENTS = RATE_COLUMNS[3]


def _played(steps: Generator[Statement, Rows, list[Finding]], rows: Rows) -> tuple[list[str], list[Finding]]:
    """The names of the statements a step of the procedure sends (each answered with `rows`) and what it returns."""
    names = []
    try:
        statement = next(steps)
        while True:
            names.append(statement[0])
            statement = steps.send(rows)
    except StopIteration as stop:
        return names, stop.value


def _answered(steps: Generator[Statement, Rows, list[Finding]], answers: list[Rows]) -> tuple[list[str], list[Finding]]:
    """The names of the statements a step of the procedure sends (each answered with the next of `answers`) and
    what it returns."""
    names, replies = [], iter(answers)
    try:
        statement = next(steps)
        while True:
            names.append(statement[0])
            statement = steps.send(next(replies))
    except StopIteration as stop:
        return names, stop.value


def _cuboid(n: int, d: int, e: float, **fields: str) -> dict[str, object]:
    return {"platform": None, "app_version": None, "country": None, "channel": None, "user_type": None} | {
        **fields,
        "n": n,
        "d": d,
        "e": e,
    }


HOST = Finding(DATE, RATE_COLUMNS[2], FUNNEL_BREAK, Segment(country="US"), kind="checkout_outage_hours")
ONE = Finding(DATE, PAYMENTS, RATE_DROP, Segment(country="US"), kind="level_shift")


def test_a_one_date_fall_on_another_incidents_date_is_the_second_incident() -> None:
    """Where the scans found a one-date fall on another step of an incident's date, that is the second incident; a
    fall over two dates, or one on a date alone, is none."""
    investigation = AuditInvestigation(dates=list(window_calendar(56).iso_dates))
    alone = replace(ONE, date="2026-03-20")
    run = [replace(ONE, date=date) for date in (DATE, "2026-03-11")]
    assert investigation.second_known([HOST, ONE]) is ONE
    assert investigation.second_known([HOST, alone]) is None and investigation.second_known([HOST, *run]) is None


def test_the_second_incident_found_is_read_again_on_its_own_cuboid() -> None:
    """One statement reads the cuboids nested with the fall's: where the country's returning users fell and its new
    ones converted as usual, the fall is the returning users'; where the new ones fell with them, the country's;
    with nothing read, the scans' cuboid stands."""
    investigation = AuditInvestigation(dates=list(window_calendar(56).iso_dates))
    narrow = [_cuboid(67, 100, 90.0, country="US"), _cuboid(40, 70, 63.0, country="US", user_type="returning")]
    names, found = _played(investigation.with_second_incident([HOST, ONE]), narrow)
    assert names == ["second incident's cuboid"]
    assert found == [HOST, replace(ONE, segment=Segment(country="US", user_type="returning"))]
    wide = [_cuboid(60, 100, 90.0, country="US"), _cuboid(40, 70, 63.0, country="US", user_type="returning")]
    assert _played(investigation.with_second_incident([HOST, ONE]), wide)[1] == [HOST, ONE]
    assert _played(investigation.with_second_incident([HOST, ONE]), [])[1] == [HOST, ONE]


@given(
    st.integers(5, 60),
    st.floats(0.2, 0.7),
    st.floats(0.3, 0.9),
    st.integers(10, 200),
    st.floats(0.3, 0.9),
)
def test_a_rest_converting_at_its_usual_rate_did_not_fall_and_one_at_the_childs_share_did(
    n: int, share: float, rate: float, rest: int, rest_rate: float
) -> None:
    """The rest of a parent whose conversions are exactly its usual ones is likelier not to have fallen; one whose
    conversions are exactly the child's share of its usual ones is likelier to have fallen with it."""
    e = n / share  # the child converted at `share` of its usual conversions
    d = math.ceil(e / rate)
    re = rest * rest_rate
    usual = rest_fell((n, d, e), (n + re, d + rest, e + re))
    assert usual <= 1e-9
    with_it = rest_fell((n, d, e), (n + re * share, d + rest, e + re))
    assert with_it >= -1e-9


def test_an_outage_on_a_date_of_a_lasting_fall_of_sessions_is_that_falls_date() -> None:
    """A lapse of push notifications lowers a platform's returning sessions for dates, unevenly over the hours: an
    outage the warehouse's scan reads on one of its dates, in a segment overlapping it, is the lapse's date; one
    on a date beside no other date of the lapse stays, and so does one whose segment holds the lapse's (an outage
    of the platform takes its returning users' sessions too)."""
    dates = list(window_calendar(56).iso_dates)
    investigation = AuditInvestigation(dates=dates, finders=ALL_FINDERS)
    segment = Segment(platform="android", user_type="returning")
    lapse = [Finding(dates[day], "sessions", COUNT_DROP, segment, kind="push_delivery_lapse") for day in (4, 5, 6)]
    outage = Finding(dates[5], "sessions", COUNT_DROP, Segment(platform="android", country="US"), kind="segment_outage")
    assert dedupe(investigation.by_precedence([outage], lapse)) == lapse
    assert dedupe(investigation.by_precedence([outage], lapse[1:2])) == [outage]
    platform = replace(outage, segment=Segment(platform="android"))
    kept = dedupe(investigation.by_precedence([platform], lapse))
    assert platform in kept and lapse[1] not in kept


def test_a_fall_a_defect_of_its_date_overlaps_is_no_second_incident() -> None:
    """The search for a date's second incident passes over the strongest fall where a defect of that date covers a
    segment overlapping its cuboid and moves its step (opens that never reach the menu lower the menu step: the
    defect's echo) and takes the next one, on a step the defect leaves alone; without the defect it takes the
    strongest."""
    investigation = AuditInvestigation(dates=list(window_calendar(56).iso_dates))
    echo = {"date": DATE, "k": 1, "country": "US", "platform": "ios", "z": -6.0, "beside": 0.0}
    second = {"date": DATE, "k": 4, "country": "US", "user_type": "returning", "z": -4.0, "beside": 0.0}
    defect = Finding(DATE, "sessions", DATA_QUALITY, Segment(platform="ios"), kind="background_opens")
    beside = _answered(investigation.with_second_incident([HOST], [defect]), [[echo, second], []])[1]
    assert beside[-1].date == DATE and beside[-1].metric == PAYMENTS
    assert beside[-1].segment == Segment(country="US", user_type="returning")
    alone = _answered(investigation.with_second_incident([HOST]), [[echo, second], []])[1]
    assert alone[-1].metric == RATE_COLUMNS[0] and alone[-1].segment == Segment(platform="ios", country="US")


@given(st.floats(0.0, SECOND_Z - 0.01), st.floats(SECOND_Z, 12.0))
def test_a_date_falling_short_of_the_bar_adds_no_second_incident(weak: float, strong: float) -> None:
    """A date's strongest fall short of SECOND_Z on an incident's date adds no row (more often a thin cuboid's noise
    than the second incident); one beyond it does, unless a date beside it fell beyond LASTING_Z too."""
    investigation = AuditInvestigation(dates=list(window_calendar(56).iso_dates))
    row = {"date": DATE, "k": 4, "country": "US", "user_type": "returning", "beside": 0.0}
    names, found = _answered(investigation.with_second_incident([HOST]), [[{**row, "z": -weak}]])
    assert names == ["second incidents"] and found == [HOST]
    lasting = [{**row, "z": -strong, "beside": -LASTING_Z}]
    assert _answered(investigation.with_second_incident([HOST]), [lasting])[1] == [HOST]
    names, found = _answered(investigation.with_second_incident([HOST]), [[{**row, "z": -strong}], []])
    assert names == ["second incidents", "second incident's cuboid"]
    assert found[-1].segment == Segment(country="US", user_type="returning") and found[-1].metric == PAYMENTS
