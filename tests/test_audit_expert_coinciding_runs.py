"""The audit expert's reading where findings meet: a candidate whose values are read and do not stand leaves its
date and metric to the next one; a lasting change holds into the dates of a defect that covers part of its segment
where a date of it beside them stands and moves alike; a level shift's run is named by user type over all its dates
at once, and a wider and a narrower finding's pair by their run's pooled moves; a level shift holding a finding that
stood alone among its siblings is that one's change, diluted; a users' change under a defect the expert repairs is
read with the defect undone, and a date so read that did not move is not bridged; and a paid channel's stop of two
dates is found where its sessions fell from about twenty to a few. The
synthetic cases state each rule; the episodes (tuning seeds, past the untuned calibration's) are the cases that
showed it lost rows."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.calibration.interface import record_episode
from metric_tracker_rl.agents.audit_coinciding import bridged, read_together
from metric_tracker_rl.agents.audit_expert import ALL_FINDERS, AuditInvestigation
from metric_tracker_rl.agents.audit_lasting import EDGE_SHARE, OTHER_SHARE, by_user_type, stands, user_type_readings
from metric_tracker_rl.agents.warehouse_findings import RATE_DROP, Finding, Rows, Statement
from metric_tracker_rl.catalog.published import row_key
from metric_tracker_rl.catalog.task_splits import UNTUNED_FIRST_OFFSET
from metric_tracker_rl.catalog.tiers import AUDIT
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.sandbox import WAREHOUSE_MAX_SQL_CHARS
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

DATES = [f"2026-03-{day:02d}" for day in range(1, 15)]
MENU, SESSIONS, COUNT_DROP = RATE_COLUMNS[0], "sessions", "absolute_drop_in_event_count"
LASTING = {finder.name for finder in ALL_FINDERS if finder.lasting}
ADS = Segment(platform="android", country="US", channel="paid_search")
TUNING = AUDIT.calibration_seed_base + UNTUNED_FIRST_OFFSET
# A search-ads pause whose last two dates a clock defect of one android version sits on (version 2).
PAUSE_UNDER_DEFECT_SEED = TUNING + 2_505
# A paid channel's stop whose last date an outage finding of another segment (read as no fall) held (version 2).
STOP_BEHIND_OUTAGE_SEED = TUNING + 2_504
# A paid channel's stop whose sessions fell from about twenty a date to a few (version 2, train split).
FAINT_STOP_SEED = 1_026_710
# An experiment's broken cart step on iOS's returning users, two of whose dates a menu_open fired at launch by one iOS
# version sits on (version 2).
BREAKAGE_UNDER_PREFIRE_SEED = TUNING + 2_704
# A debug build of one android version on four dates, whose dashboard sessions fell with it (version 1): read with
# the build's sessions counted, android's returning users moved on one date only.
DEBUG_BUILD_SEED = TUNING + 1_702


def _pause(day: int, observed: float = math.nan, baseline: float = math.nan) -> Finding:
    return Finding(DATES[day], SESSIONS, COUNT_DROP, ADS, kind="search_ads_pause", observed=observed, baseline=baseline)


def test_a_candidate_stands_where_its_values_depart_its_way() -> None:
    assert stands(_pause(3, observed=2, baseline=17))
    assert not stands(_pause(3, observed=69, baseline=64))  # a drop that rose
    assert not stands(_pause(3, observed=16, baseline=17))  # within the margin
    assert not stands(_pause(3))  # no value read


def test_a_defects_dates_covering_part_of_a_change_need_one_standing_side() -> None:
    """A pause on three dates, a defect on the last two: where the defect covers part of the segment (`partly`),
    the date before it that stands carries the run through; where it covers the whole segment, both sides must."""
    investigation = AuditInvestigation(dates=DATES, finders=ALL_FINDERS)
    run = [_pause(day) for day in (3, 4, 5)]
    assert bridged(run[:1], run, LASTING, investigation.day) == run[:1]
    assert bridged(run[:1], run, LASTING, investigation.day, partly=lambda f: True) == run
    assert bridged(run[:1], run, LASTING, investigation.day, partly=lambda f: f.date != DATES[5]) == run[:2]
    nothing = [_pause(day) for day in (4, 5)]
    assert bridged([], nothing, LASTING, investigation.day, partly=lambda f: True) == []


@given(st.sets(st.integers(0, 13)), st.sets(st.integers(0, 13)), st.sets(st.integers(0, 13)))
def test_one_sided_bridging_adds_only_dates_of_a_run_with_a_standing_date(
    scanned: set[int], standing: set[int], part: set[int]
) -> None:
    every = [_pause(day) for day in sorted(scanned)]
    kept = [f for f in every if DATES.index(f.date) in standing]
    day = AuditInvestigation(dates=DATES).day
    out = bridged(kept, every, LASTING, day, partly=lambda f: DATES.index(f.date) in part)
    assert set(kept) <= set(out) <= set(every)
    assert set(bridged(kept, every, LASTING, day)) <= set(out)  # the two-sided rule's dates stay
    for f in set(out) - set(bridged(kept, every, LASTING, day)):
        at = DATES.index(f.date)
        assert at in part
        reach = {at}
        for step in (-1, 1):
            d = at + step
            while d in scanned:
                reach.add(d)
                d += step
        assert reach & standing & scanned  # a standing date of its unbroken run


def test_a_bridged_date_needs_a_standing_date_of_its_run_that_moved_alike() -> None:
    """A date kept for a standing neighbour goes where no date of its run outside the defect moved EDGE_SHARE of its
    own move: a far larger fall there is the defect's."""
    investigation = AuditInvestigation(dates=DATES, finders=ALL_FINDERS)
    standing = _pause(3, observed=4, baseline=17)  # -76%
    alike = _pause(4, observed=5, baseline=18)  # -72%
    far = _pause(4, observed=1, baseline=100)  # -99%, the neighbour's -76% is more than half of it
    assert investigation.supported([standing, alike], {(alike.date, SESSIONS, ADS)}) == [standing, alike]
    faint = _pause(3, observed=15, baseline=18)  # -17%, less than EDGE_SHARE of -72%
    assert EDGE_SHARE * 0.72 > 0.17
    assert investigation.supported([faint, alike], {(alike.date, SESSIONS, ADS)}) == [faint]
    assert investigation.supported([standing, far], {(far.date, SESSIONS, ADS)}) == [standing, far]
    assert investigation.supported([alike], {(alike.date, SESSIONS, ADS)}) == []  # nothing outside the defect


def _shift(day: int, segment: Segment) -> Finding:
    return Finding(DATES[day], MENU, RATE_DROP, segment, kind="level_shift")


def _read(findings: list[Finding], move: float) -> list[Finding]:
    return [replace(f, observed=1 + move, baseline=1.0) for f in findings]


def test_a_level_shifts_run_is_named_by_user_type_over_all_its_dates() -> None:
    wide = Segment(platform="ios")
    run = [_shift(day, wide) for day in (3, 4, 5)]
    new, returning = user_type_readings(run)
    assert {f.segment.user_type for f in new} == {"new"} and {f.segment.user_type for f in returning} == {"returning"}
    assert all(math.isnan(f.observed) for f in [*new, *returning])
    assert by_user_type(wide, _read(new, -0.05), _read(returning, -0.4)) == replace(wide, user_type="returning")
    assert by_user_type(wide, _read(new, -0.4), _read(returning, -0.4 * OTHER_SHARE - 0.01)) == wide
    assert by_user_type(wide, _read(new, -0.4), _read(returning, 0.1)) == replace(wide, user_type="new")
    narrow = Segment(platform="ios", user_type="new")
    own, other = user_type_readings([_shift(day, narrow) for day in (3, 4)])
    assert {f.segment.user_type for f in other} == {"returning"}
    assert by_user_type(narrow, _read(own, -0.4), _read(other, -0.35)) == wide  # every user moved
    assert by_user_type(narrow, _read(own, -0.4), _read(other, -0.1)) == narrow
    assert by_user_type(narrow, _read(own, -0.4), [replace(f, observed=math.nan) for f in other]) == narrow


def _drive(steps: Generator[Statement, Rows, Any], answer: Callable[[str], Rows]) -> tuple[list[Statement], Any]:
    """Run a statement generator to its end, answering each statement with `answer(sql)`; (statements, result)."""
    sent: list[Statement] = []
    try:
        statement = next(steps)
        while True:
            sent.append(statement)
            statement = steps.send(answer(statement[1]))
    except StopIteration as stop:
        return sent, stop.value


def _values(moves: list[float]) -> Callable[[str], Rows]:
    """An answer to the incident values' statement: row i's value moved by moves[i] from a baseline of 1."""
    return lambda sql: [{"i": i, "value": 1 + move, "peers": 1.0} for i, move in enumerate(moves)]


def test_a_level_shifts_run_is_read_in_the_narrowings_statement_where_no_other_finding_shares_its_dates() -> None:
    """The narrowing's statement reads both user types of each level shift's dates and names the run by them; a run
    another finder's candidate shares a date and metric with is left to that one's rule, and nothing is read."""
    wide = Segment(country="US")
    shifts = [_shift(day, wide) for day in (3, 4)]
    moves = [-0.02, -0.03, -0.5, -0.45]  # new users' two dates, then returning users'
    sent, result = _drive(AuditInvestigation(dates=DATES).narrowed_to_a_user_type(shifts), _values(moves))
    assert [name for name, _ in sent] == ["incident values"]  # one statement reads the run
    assert [f.segment for f in result] == [replace(wide, user_type="returning")] * 2
    rise = Finding(DATES[3], MENU, RATE_DROP, wide, kind="price_rise")
    steps = AuditInvestigation(dates=DATES).narrowed_to_a_user_type([*shifts, rise])
    try:
        next(steps)
        raise AssertionError("nothing to read where another finding shares the run's date and metric")
    except StopIteration as stop:
        assert stop.value == [*shifts, rise]


def test_the_checks_beside_defects_share_one_statement_where_it_fits() -> None:
    """Both checks (with the defects undone, and in the sessions a defect leaves alone) go in one statement, each
    row tagged with its part; where the two together are too long for the query tool, each goes alone."""
    asked = {False: [(0, "a")], True: [(0, "b"), (1, "c")]}

    def builds(width: int) -> dict[bool, Callable[[Sequence[tuple[object, ...]]], str]]:
        return {
            excluding: (lambda rows, tag=tag: f"SELECT 1 i /* {tag * width} {len(rows)} */")
            for excluding, tag in ((False, "u"), (True, "b"))
        }

    def answer(sql: str) -> Rows:
        if "part" in sql:
            return [{"part": 0, "i": 0}, {"part": 1, "i": 0}, {"part": 1, "i": 1}]
        return [{"i": 0}]

    sent, read = _drive(read_together(asked, builds(10)), answer)
    assert len(sent) == 1 and "UNION ALL BY NAME" in sent[0][1]
    assert [len(read[False]), len(read[True])] == [1, 2]
    sent, read = _drive(read_together(asked, builds(WAREHOUSE_MAX_SQL_CHARS // 2)), answer)
    assert [name for name, _ in sent] == ["defects undone", "beside defects"]
    assert [len(read[False]), len(read[True])] == [1, 1]


def _sale(day: int, segment: Segment, kind: str) -> Finding:
    return Finding(DATES[day], RATE_COLUMNS[1], "rate_spike_from_median", segment, kind=kind)


@pytest.mark.parametrize(
    ("new_users", "narrowed"),
    [
        ((0.2, 0.8), False),  # the first date alone would be the returning users': the run's pooled move is not
        ((0.1, 0.2), True),
    ],
)
def test_a_pair_is_narrowed_by_its_runs_pooled_moves(new_users: tuple[float, float], narrowed: bool) -> None:
    """A country's rise and its returning users' on two dates: the returning users rose by 1.0 on each, the new users
    by `new_users`; the rise is the returning users' where the new users' pooled move is under OTHER_SHARE of it."""
    wide, narrow = Segment(country="IN"), Segment(country="IN", user_type="returning")
    candidates = [
        *(_sale(day, wide, "promo_surge") for day in (3, 4)),
        *(_sale(day, narrow, "member_price_sale") for day in (3, 4)),
    ]
    moves = [1.0, 1.0, *new_users]  # the returning users' readings, then the new users'
    investigation = AuditInvestigation(dates=DATES, finders=ALL_FINDERS)
    sent, result = _drive(investigation.narrowed_to_a_user_type(candidates), _values(moves))
    assert len(sent) == 1  # one statement reads the pairs
    assert [f.segment for f in result[:2]] == [narrow if narrowed else wide] * 2


def test_a_level_shift_holding_a_finding_that_stood_alone_among_its_siblings_is_its_change_diluted() -> None:
    """A sign-out of android's returning users in the US, whose siblings (android elsewhere, the US's other
    platforms) did not move: the US's fall on its dates is the sign-out's, not a level shift of the country."""
    investigation = AuditInvestigation(dates=DATES, finders=ALL_FINDERS)
    shift = _shift(3, Segment(country="US"))
    sign_out = replace(
        _shift(3, Segment(platform="android", country="US", user_type="returning")), kind="regional_sign_out"
    )
    assert investigation.by_precedence([shift], [sign_out]) == [sign_out]
    elsewhere = replace(sign_out, segment=Segment(platform="android", country="GB", user_type="returning"))
    assert investigation.by_precedence([shift], [elsewhere]) == [shift, elsewhere]
    other_date = replace(sign_out, date=DATES[4])
    assert investigation.by_precedence([shift], [other_date]) == [shift, other_date]


@pytest.mark.slow  # an audit episode played
def test_a_lasting_changes_date_read_with_a_defect_undone_that_did_not_move_is_not_bridged() -> None:
    """Android's returning users' sessions fell on the debug build's four dates in the dashboard; counted with the
    build's sessions, they moved on one date only. The three others were read whole and did not move: no push
    lapse is carried through them from that one date."""
    reported = _reported(DEBUG_BUILD_SEED, 1)
    for date in ("2026-04-01", "2026-04-02", "2026-04-03", "2026-04-04"):
        assert row_key(date, "event_count", "app_opens") not in reported, date


def _reported(seed: int, version: int) -> dict[str, dict[str, str | None]]:
    env = MetricTrackerRlEnvironment()
    try:
        run = record_episode("audit_expert", {"difficulty": "audit", "seed": seed, "version": version}, env)
    finally:
        env.close()
    assert run.graded is not None
    return {
        row_key(r.date, r.entity_type, r.entity_name): {f: getattr(r, f) for f in ("platform", "country", "channel")}
        for r in run.graded.submitted_rows
    }


@pytest.mark.slow  # an audit episode played
def test_a_pause_holds_into_the_dates_of_a_defect_of_one_version() -> None:
    """The pause's three dates (android's paid search in the US): a clock defect of one android version sits on the
    last two, and the first stands; each is reported."""
    reported = _reported(PAUSE_UNDER_DEFECT_SEED, 2)
    for date in ("2026-04-21", "2026-04-22", "2026-04-23"):
        assert reported.get(row_key(date, "event_count", "app_opens")) == {
            "platform": "android",
            "country": "US",
            "channel": "paid_search",
        }, date


@pytest.mark.slow  # an audit episode played
def test_a_stops_date_is_reported_where_a_likelier_candidate_did_not_fall() -> None:
    reported = _reported(STOP_BEHIND_OUTAGE_SEED, 2)
    assert reported.get(row_key("2026-04-11", "event_count", "app_opens")) == {
        "platform": None,
        "country": "DE",
        "channel": "paid_search",
    }


@pytest.mark.slow  # an audit episode played
def test_a_paid_channels_stop_from_twenty_sessions_a_date_is_found() -> None:
    reported = _reported(FAINT_STOP_SEED, 2)
    for date in ("2026-04-08", "2026-04-09", "2026-04-10"):
        assert reported.get(row_key(date, "event_count", "app_opens")) == {
            "platform": None,
            "country": "FR",
            "channel": "paid_search",
        }, date


@pytest.mark.slow  # an audit episode played
def test_a_users_fall_under_a_defect_the_expert_repairs_is_read_with_the_defect_undone() -> None:
    """The prefired menu_opens inflate the cart step's denominator on two of the breakage's dates; read in the
    segment's sessions less the version's, the fall did not stand out, and the two dates went unreported. With the
    prefired menu_opens left out (the repair), the arm's cart step still falls far: those dates are the users'."""
    reported = _reported(BREAKAGE_UNDER_PREFIRE_SEED, 2)
    for date in ("2026-03-09", "2026-03-10"):
        assert reported.get(row_key(date, "conversion_rate", RATE_COLUMNS[1])) == {
            "platform": "ios",
            "country": None,
            "channel": None,
        }, date


def test_a_lasting_finders_lone_date_takes_no_wider_findings_place() -> None:
    """An outage of a platform and a push lapse of its returning users on one date: the lapse, a change that lasts
    dates, has no date beside it and will not be reported, so the platform's finding is not narrowed to it."""
    investigation = AuditInvestigation(dates=DATES, finders=ALL_FINDERS)
    outage = Finding(DATES[5], SESSIONS, COUNT_DROP, Segment(platform="ios"), kind="segment_outage")
    lapse = Finding(
        DATES[5], SESSIONS, COUNT_DROP, Segment(platform="ios", user_type="returning"), kind="push_delivery_lapse"
    )
    assert investigation.alone_in_its_run(lapse, [outage, lapse])
    steps = investigation.narrowed_to_a_user_type([outage, lapse])
    try:
        next(steps)
        raise AssertionError("nothing to read where the narrower finding stands alone")
    except StopIteration as stop:
        assert stop.value == [outage, lapse]
    beside = replace(lapse, date=DATES[6])
    assert not investigation.alone_in_its_run(lapse, [outage, lapse, beside])


def test_a_block_of_hours_inside_a_level_shifts_run_of_a_wider_segment_is_the_runs() -> None:
    """Returning users' menu step fell over four dates: each platform's hours on a date of the run show blocks far
    below their usual; a block on a date the run holds, with a date beside it that stands on its own values, is left
    to the run's row."""
    investigation = AuditInvestigation(dates=DATES, finders=ALL_FINDERS)
    returning = Segment(user_type="returning")
    shifts = [replace(_shift(day, returning), observed=0.15, baseline=0.38) for day in (3, 4, 5, 6)]
    block = Finding(DATES[4], MENU, "funnel_break", Segment(platform="android"), kind="search_outage_hours")
    assert investigation.within_shift(block, shifts)
    assert not investigation.within_shift(replace(block, date=DATES[8]), shifts)  # a date the run does not hold
    assert not investigation.within_shift(block, shifts[1:2])  # a run of one date
    faint = [replace(f, observed=0.37) if f.date != block.date else f for f in shifts]
    assert not investigation.within_shift(block, faint)  # no date beside it stands on its own values
    assert not investigation.within_shift(replace(block, metric=RATE_COLUMNS[1]), shifts)  # another step
    elsewhere = [_shift(day, Segment(platform="ios")) for day in (3, 4, 5)]
    assert not investigation.within_shift(block, elsewhere)  # no segment in common
    ordered = investigation.by_precedence([*shifts], [block])
    assert block not in ordered and ordered[: len(shifts)] == shifts
