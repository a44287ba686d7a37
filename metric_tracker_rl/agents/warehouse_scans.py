"""The warehouse expert's scans for business incidents, each one statement over the counted sessions
(warehouse_sql.sessions_cte): the residuals of every cuboid's conversion against its leaves' baseline, runs of dates
on which a cuboid's step fell, the releases' and experiments' tests, and the blocks of hours that collapsed."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from metric_tracker_rl.agents.warehouse_sql import Fixes, next_date, sessions_cte, sql_literal, step_unnest

# The searched dimensions (scan aliases): an app version is named with its platform.
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "platform": ("p",),
    "country": ("c",),
    "channel": ("h",),
    "user_type": ("u",),
    "version": ("p", "v"),
}
ALIASES = {"p": "platform", "c": "country", "v": "app_version", "h": "channel", "u": "user_type"}


def cuboid_sets(max_dims: int = 3) -> list[tuple[str, ...]]:
    """The alias sets of every cuboid of one to `max_dims` dimensions (a version counts as one, with its platform)."""
    sets = []
    for size in range(1, max_dims + 1):
        for combo in itertools.combinations(DIMENSIONS, size):
            if "version" in combo and "platform" in combo:
                continue
            named = {alias for dimension in combo for alias in DIMENSIONS[dimension]}
            sets.append(tuple(alias for alias in "pcvhu" if alias in named))
    return sets


def residuals_ctes(steps: Iterable[int], versions: bool = True, sets: list[tuple[str, ...]] | None = None) -> str:
    """After sessions_cte: `g`, per date, step and cuboid (of `sets`, else every cuboid of one to three dimensions,
    with or without app versions), the residual r of its sessions reaching the step's later event against its
    leaves' baseline (each leaf, platform x country x channel x user type, converting as on the same weekday's other
    dates, pooled), the expected count e and the variance w (binomial, floored for a step converting nearly
    always)."""
    sets = sets if sets is not None else [s for s in cuboid_sets(3) if versions or "v" not in s]
    grouping = ", ".join("(" + ", ".join(s) + ")" for s in sets)
    used = {alias for s in sets for alias in s}
    named = ", ".join(alias if alias in used else f"NULL {alias}" for alias in "pvchu")
    baseline = "(sum(n) OVER w - n) / nullif(sum(d) OVER w - d, 0) q"
    window = "WINDOW w AS (PARTITION BY k, p, c, h, u, isodow(date))"

    def grouped(where: str = "", having: str = "") -> str:
        return (
            f"g AS (SELECT date, k, {named}, sum(n - q * d) r, sum(q * d) e, "
            f"sum(greatest(q * (1 - q), 0.1 * q) * d) w FROM j {where}GROUP BY date, k, GROUPING SETS ({grouping})"
            f"{having})"
        )

    if "v" not in used:  # the leaves are the baseline's own cells
        return (
            f", l AS (SELECT date, platform p, country c, channel h, user_type u, {step_unnest(steps)} FROM s), "
            "lv AS (SELECT date, k, p, c, h, u, sum(n) n, sum(d) d FROM l GROUP BY ALL), "
            f"j AS (SELECT *, {baseline} FROM lv {window}), " + grouped(where="WHERE q IS NOT NULL ")
        )
    return (
        f", l AS (SELECT date, platform p, app_version v, country c, channel h, user_type u, {step_unnest(steps)} "
        "FROM s), lv AS (SELECT date, k, p, v, c, h, u, sum(n) n, sum(d) d FROM l GROUP BY ALL), "
        "t0 AS (SELECT date, k, p, c, h, u, sum(n) n, sum(d) d FROM lv GROUP BY ALL), "
        f"b AS (SELECT date, k, p, c, h, u, {baseline} FROM t0 {window}), "
        "j AS (SELECT lv.*, q FROM lv JOIN b USING (date, k, p, c, h, u) WHERE q IS NOT NULL), "
        + grouped(having=" HAVING NOT (p = 'web' AND v IS NOT NULL)")
    )


SPREAD = 0.04  # a cuboid's conversion varies from date to date by about this share of it, beyond sampling
MIN_EXPECTED = 5  # expected conversions a cuboid needs on a date to be read
RUN_DAYS = 5  # consecutive dates a run scan pools, at most (a level shift's longest)
RUN_TOP = 12
HOST_Z = 3.0  # a single date's fall where a concurrent incident may lie: read by the expert against its host


def named_fields(table: str = "") -> str:
    """How many fields a scan row's cuboid names (of `table`, a table's name with its dot, or the row's own)."""
    return " + ".join(f"({table}{a} IS NOT NULL)::INT" for a in "pchu")


def z_of(r: str, e: str, w: str) -> str:
    return f"{r} / sqrt({w} + ({SPREAD} * {e}) ^ 2)"


def pooled_sql() -> str:
    """After `y` (lists by date of a cuboid's last RUN_DAYS dates) and `n` (a run's length): the run's residual rs,
    expected es and variance vs pooled over its last n dates: each date's spread of conversion is its own, so the
    variances add (a run's weaker first and last dates add to its evidence)."""
    return (
        f"list_sum(rl[-n:]) rs, list_sum(el[-n:]) es, list_sum(wl[-n:]) + {SPREAD**2:g} * "
        "list_sum(list_transform(el[-n:], lambda x: x * x)) vs"
    )


def run_scan_sql(
    rules: frozenset[str],
    fixes: Fixes,
    steps: tuple[int, ...],
    bars: dict[int, float],
    hosts: Sequence[str] = (),
    siblings: bool = False,
) -> str:
    """Per step and cuboid of one or two fields (no app version: a version's falls are the releases'), its falls
    pooled over one to RUN_DAYS consecutive dates (scaled by the cuboid's own spread of a date's z over the window,
    where wider than the model's) beyond the bar of a cuboid naming so many fields (`bars`), and the falls of a
    single date beyond HOST_Z on a date where a concurrent incident may lie (one of `hosts`, an incident's dates,
    or a date of a run of several dates beyond the lowest bar): of those, each one no stronger run overlaps (on its
    step, in its dates and cuboid: one fall seen from several cuboids and lengths is its strongest), the RUN_TOP
    strongest with its first date, length, z and the parent its fall ripples through (`wider`, see _ripple). Where
    `siblings`, a run of one field is named by another field's value instead where that one holds the fall (see
    _sibling)."""
    sets = [s for s in cuboid_sets(2) if "v" not in s]
    bar = f"CASE {named_fields()} " + " ".join(f"WHEN {named} THEN {z:g}" for named, z in sorted(bars.items())) + " END"
    same = " AND ".join(f"coalesce(a.{x} = b.{x}, TRUE)" for x in "pchu")  # a field either leaves open: any value
    listed = "".join(
        f"first = {sql_literal(a)} OR " if a == b else f"first BETWEEN {sql_literal(a)} AND '{b}' OR "
        for a, b in date_runs(hosts)
    )
    return (
        sessions_cte(rules, fixes)
        + residuals_ctes(steps, sets=sets)
        + ", y AS (SELECT *, list(r) OVER x rl, list(e) OVER x el, list(w) OVER x wl, list(date) OVER x dl, "
        f"greatest(1, 1.4826 * mad({z_of('r', 'e', 'w')}) OVER (PARTITION BY k, p, c, h, u)) sd "
        f"FROM g WINDOW x AS (PARTITION BY k, p, c, h, u ORDER BY date ROWS {RUN_DAYS - 1} PRECEDING)), "
        f"runs AS (SELECT k, p, c, h, u, dl[-n] first, date last, n, {pooled_sql()}, rs / sqrt(vs) / sd z "
        f"FROM y, range(1, {RUN_DAYS + 1}) t(n) WHERE len(rl) >= n AND date - dl[-n] = n - 1 "
        f"AND es >= {MIN_EXPECTED}), "
        f"clear AS (SELECT * FROM runs a WHERE z <= -({bar}) OR n = 1 AND z <= -{HOST_Z:g} AND ({listed}"
        f"EXISTS (SELECT 1 FROM runs b WHERE b.n > 1 AND b.z <= -{min(bars.values()):g} AND a.first BETWEEN "
        "b.first AND b.last))), "
        "top AS (SELECT *, row_number() OVER (ORDER BY z) i FROM clear a WHERE NOT EXISTS (SELECT 1 FROM clear b "
        "WHERE b.k = a.k AND b.z < a.z AND "
        f"b.first <= a.last AND a.first <= b.last AND {same}) ORDER BY z LIMIT {RUN_TOP}), {_ripple()} "
        + (
            _sibling(SIBLING_RUN_Z)
            if siblings
            else "SELECT k, p platform, c country, h channel, u user_type, first, n, round(z, 2) z, wider "
            "FROM top LEFT JOIN wide USING (i) ORDER BY z"
        )
    )


SIBLING_Z = 2.0  # the part of a run's cuboid outside its sibling's fell beyond this z (or did not)
# A sibling's own run fell beyond this z: what tells it holds the fall is its users outside the run (SIBLING_Z), and a
# sibling of spread-out users (every returning user) stands out less than a run of the channel most of them use.
SIBLING_RUN_Z = 3.0


def _sibling(bar: float) -> str:
    """After `top`, `runs` and `wide`: the run scan's SELECT, each run named by its cuboid, or for a run of one
    field by the other field's value (its sibling: a run of one field, the same step and dates, beyond `bar`) that
    holds the fall: the sibling's users outside the run's cuboid fell beyond SIBLING_Z, and the run's users outside
    the sibling's did not. A fall of returning users shows in the organic channel too, where most of them arrive,
    and may stand out further there by its volume; the organic channel's new users did not fall, and the returning
    users of other channels did. Of two such siblings, the one whose users outside the run fell further."""
    both = " AND ".join(f"ab.{x} IS NOT DISTINCT FROM coalesce(t.{x}, b.{x})" for x in "pchu")
    apart = " AND ".join(f"(t.{x} IS NULL OR b.{x} IS NULL)" for x in "pchu")
    runs = "ON {0}.k = t.k AND {0}.last = t.last AND {0}.n = t.n"
    return (
        f", sib AS (SELECT t.i, b.p, b.c, b.h, b.u, (b.rs - ab.rs) / sqrt(greatest(b.vs - ab.vs, 1)) bz, "
        f"(t.rs - ab.rs) / sqrt(greatest(t.vs - ab.vs, 1)) tz FROM top t JOIN runs b {runs.format('b')} "
        f"JOIN runs ab {runs.format('ab')} WHERE {named_fields('t.')} = 1 AND {named_fields('b.')} = 1 AND {apart} "
        f"AND {named_fields('ab.')} = 2 AND {both} AND b.z <= -{bar:g}), "
        f"swap AS (SELECT i, arg_min([p, c, h, u], bz) s FROM sib WHERE bz <= -{SIBLING_Z:g} "
        f"AND tz > -{SIBLING_Z:g} GROUP BY i) "
        "SELECT k, "
        + ", ".join(f"CASE WHEN s IS NULL THEN {x} ELSE s[{i}] END {ALIASES[x]}" for i, x in enumerate("pchu", 1))
        + ", first, n, round(z, 2) z, wider FROM top LEFT JOIN wide USING (i) LEFT JOIN swap USING (i) ORDER BY z"
    )


RIPPLE_Z, RIPPLE_SHARE = 2.0, 0.5  # the rest of a parent fell beyond this z, by this share of the run's own fall


def _ripple() -> str:
    """After `top` (a run scan's strongest runs) and `runs`: `wide`, for each run of two fields, the value of the one
    whose cuboid (its parent) the fall ripples through: the rest of the parent fell too over the run's dates, beyond
    RIPPLE_Z and by RIPPLE_SHARE of the run's own fall or as much as its noise cannot tell from it (a fall seen
    strongest in a part of its cuboid by chance belongs to the whole). Of two such parents, the one whose rest fell
    further. The rest's variance is the parent's less the run's (no smaller than its own)."""
    parent = " AND ".join(f"(o.{y} IS NULL OR o.{y} = t.{y})" for y in "pchu")
    return (
        "rest AS (SELECT i, coalesce(o.p, o.c, o.h, o.u) x, o.rs - t.rs r, o.es - t.es e, o.vs - t.vs v, "
        f"t.rs / t.es own FROM top t JOIN runs o ON o.k = t.k AND o.last = t.last AND o.n = t.n AND {parent} "
        "WHERE o.es > t.es), "
        "wide AS (SELECT i, arg_min(x, r / sqrt(v)) wider FROM rest "
        f"WHERE r / sqrt(v) <= -{RIPPLE_Z:g} AND (r / e <= {RIPPLE_SHARE:g} * own "
        "OR abs(r / e - own) <= 2 * sqrt(v) / e) GROUP BY ALL)"
    )


def date_runs(dates: Iterable[str]) -> list[tuple[str, str]]:
    """The dates as runs of consecutive dates: (first, last) each."""
    runs: list[tuple[str, str]] = []
    for date in sorted(set(dates)):
        if runs and next_date(runs[-1][1], 1) == date:
            runs[-1] = (runs[-1][0], date)
        else:
            runs.append((date, date))
    return runs


CONTEXT_DATES = 7  # dates from a release's first (or over an experiment) whose residuals are read
FIRST_DATES = 3  # the dates a regression or breakage lasts at least, from its first


def _context_tests(floor: float, narrowed: bool = False) -> tuple[str, str]:
    """After sessions_cte: the common tables and the SELECT of each release's version (a release breaks a step on
    its new version; `narrowed`: also the version's users of one country, channel or user type) on the two late
    steps over its first CONTEXT_DATES dates, and each experiment's arm on every step over its dates: per date the
    residual r, the expected e and the variance w (lists by date from the first; an experiment's with its dates'
    offsets from its start), where the pooled fall over them or over the first FIRST_DATES reaches `floor`."""
    sets = [("p", "v"), ("p",), ("c",), ("p", "c"), ("p", "h"), ("p", "u"), ("c", "h"), ("c", "u")]
    sets += [("p", "v", "c"), ("p", "v", "h"), ("p", "v", "u")] if narrowed else []
    same = " AND ".join(f"g.{a} IS NOT DISTINCT FROM a.{a}" for a in "pchu")
    first = [f"sum({x}) FILTER (dd < {FIRST_DATES})" for x in "rew"]  # a regression's shortest run
    ctes = (
        residuals_ctes(range(4), sets=sets)
        + ", rel AS (SELECT platform p, app_version v, min(rollout_start) f FROM releases GROUP BY ALL), "
        "a AS (SELECT experiment, platform p, country c, channel h, user_type u, target_step, start_date f, "
        "end_date l FROM experiments), t AS (SELECT 'release' what, rel.v detail, g.date - rel.f dd, g.* "
        f"FROM g JOIN rel USING (p, v) WHERE g.k >= 3 AND g.date BETWEEN rel.f AND rel.f + {CONTEXT_DATES - 1} "
        "UNION ALL SELECT 'experiment', a.experiment, g.date - a.f, g.* FROM g JOIN a ON "
        + same
        + " AND g.v IS NULL AND g.date BETWEEN a.f AND a.l)"
    )
    select = (
        "SELECT what, detail, k, p platform, c country, v app_version, h channel, u user_type, min(date) first, "
        "list(round(r, 1) ORDER BY dd) r, list(round(e, 1) ORDER BY dd) e, list(round(w, 1) ORDER BY dd) w, "
        "list(dd ORDER BY dd) FILTER (what = 'experiment') offsets FROM t GROUP BY ALL "
        f"HAVING least({z_of('sum(r)', 'sum(e)', 'sum(w)')}, {z_of(*first)}) <= -{floor} ORDER BY ALL"
    )
    return ctes, select


BLOCK = 3  # hours of a block: every outage or payment failure (three hours or more) holds one whole
OUTAGE_RATIO, BREAK_RATIO = 0.35, 0.3  # a block's sessions (conversions) at most this share of its baseline
# A block's fall as the signed root of its likelihood ratio (Poisson for sessions, binomial for payments): sampling
# of a few sessions an hour is far from normal.


def poisson_z(o: str, b: str) -> str:
    """The signed root of the likelihood ratio of `o` sessions against `b` expected."""
    return f"-sqrt(2 * (coalesce({o} * ln(nullif({o}, 0) / {b}), 0) + {b} - {o}))"


def binomial_z(n: str, d: str, e: str) -> str:
    """The signed root of the likelihood ratio of `n` conversions of `d` arrivals against `e` expected."""
    return (
        f"-sqrt(2 * (coalesce({n} * ln(nullif({n}, 0) / {e}), 0) + coalesce(({d} - {n}) * ln(nullif({d} - {n}, 0) "
        f"/ ({d} - {e})), 0)))"
    )


OUTAGE_Z, BREAK_Z = 5.5, 5.5
REST_SHARE = 0.75  # an outage leaves the rest of the day's sessions at this share of their baseline or more
# Hours of the longest outage or payment failure: each is read over a block of BLOCK hours and over one this long, and
# an outage's rest of the day outside as many hours either side of its block as make one this long.
LONGEST_BLOCK = 7
HOURS_TOP = 10


def _hours(payments_rest: bool = False, platform_break_z: float | None = None) -> tuple[str, str]:
    """After sessions_cte (with `hours`): the common tables and the SELECT of the falls per date and cuboid of
    platform, country or both, by blocks of BLOCK and of LONGEST_BLOCK hours:

    - `outage`: the block whose sessions fell most against the same weekday's other dates (their mean that hour),
      where they fell to OUTAGE_RATIO of that or less beyond OUTAGE_Z, the day lost at least half of the block's
      loss (hours moved to others are a timing shift) and the rest of the day (outside the longest outage that
      holds the block) kept REST_SHARE of its sessions (a whole day's fall is demand);
    - `payments`: the block whose payments fell most against its orders (at the cuboid's rate on the same weekday's
      other dates), where they fell to BREAK_RATIO of that or less beyond BREAK_Z, or, where `platform_break_z` is
      given, on a platform alone to none beyond it (and, where `payments_rest`, the rest of the day kept REST_SHARE
      of its payments: a whole day's fall is a step converting worse).

    Each row: what, its date (first, as the tests name theirs), cuboid, z; by what, strongest first."""
    cuboid = "nullif(p, '') platform, nullif(c, '') country"
    both = ", ".join(
        f"[sum({x}) OVER x, sum({x}) OVER l] {name}"
        for x, name in (("o", "lo"), ("b", "lb"), ("n", "ln"), ("d", "ld"), ("q * d", "le"))
    )
    rests = (
        "sum(n) OVER y dayn, sum(q * d) OVER y daye, sum(n) OVER m mn, sum(q * d) OVER m me, " if payments_rest else ""
    )
    rest = f" AND dayn - mn >= {REST_SHARE} * (daye - me)" if payments_rest else ""
    bar = f"bz <= -{BREAK_Z}"
    if platform_break_z is not None:
        bar = f"({bar} OR c = '' AND bn = 0 AND bz <= -{platform_break_z:g})"
    ctes = (
        ", hh AS (SELECT date, hr, coalesce(platform, '') p, "
        "coalesce(country, '') c, count(*) o, sum(m4) n, sum(m3) d FROM s "
        "GROUP BY date, hr, GROUPING SETS ((platform), (country), (platform, country))), "
        "grid AS (SELECT * FROM (SELECT DISTINCT p, c FROM hh) CROSS JOIN (SELECT DISTINCT date FROM s) "
        "CROSS JOIN (SELECT range hr FROM range(24))), "
        "z AS (SELECT grid.*, coalesce(o, 0) o, coalesce(n, 0) n, coalesce(d, 0) d FROM grid LEFT JOIN hh "
        "USING (p, c, date, hr)), "
        "bb AS (SELECT *, (sum(o) OVER w - o) / (count(*) OVER w - 1) b, "
        "least((sum(n) OVER v - sum(n) OVER u) / nullif(sum(d) OVER v - sum(d) OVER u, 0), 0.95) q FROM z "
        "WINDOW w AS (PARTITION BY p, c, isodow(date), hr), v AS (PARTITION BY p, c, isodow(date)), "
        "u AS (PARTITION BY p, c, date)), "
        "blk AS (SELECT *, sum(o) OVER y dayo, sum(b) OVER y dayb, sum(o) OVER m mo, sum(b) OVER m mb, "
        f"{rests}{both} "
        f"FROM bb WINDOW x AS (PARTITION BY p, c, date ORDER BY hr ROWS {BLOCK - 1} PRECEDING), "
        f"m AS (PARTITION BY p, c, date ORDER BY hr ROWS BETWEEN {LONGEST_BLOCK - 1} PRECEDING AND "
        f"{LONGEST_BLOCK - BLOCK} FOLLOWING), l AS (PARTITION BY p, c, date ORDER BY hr ROWS "
        f"{LONGEST_BLOCK - 1} PRECEDING), y AS (PARTITION BY p, c, date)), "
        "bl AS (SELECT *, unnest(lo) bo, unnest(lb) bbk, unnest(ln) bn, unnest(ld) bd, unnest(le) be FROM blk "
        f"WHERE hr >= {BLOCK - 1}), "
        f"zz AS (SELECT *, CASE WHEN bo <= {OUTAGE_RATIO} * bbk THEN {poisson_z('bo', 'bbk')} END oz, "
        f"CASE WHEN bn <= {BREAK_RATIO} * be THEN {binomial_z('bn', 'bd', 'be')} END bz FROM bl), "
        f"hit AS (SELECT 'outage' what, *, oz v FROM zz WHERE oz <= -{OUTAGE_Z} "
        f"AND dayb - dayo >= 0.5 * (bbk - bo) AND dayo - mo >= {REST_SHARE} * (dayb - mb) "
        "UNION ALL SELECT 'payments', *, bz FROM zz "
        f"WHERE {bar}{rest})"
    )
    select = (
        f"SELECT * FROM (SELECT what, date first, {cuboid}, round(v, 2) z FROM hit "
        "QUALIFY row_number() OVER (PARTITION BY what, p, c, date ORDER BY v) = 1) "
        f"QUALIFY row_number() OVER (PARTITION BY what ORDER BY z) <= {HOURS_TOP} ORDER BY what, z"
    )
    return ctes, select


HOURS_WHAT = ("outage", "payments")  # the rows of context_tests_and_hours_sql that are the hours'


def context_tests_and_hours_sql(
    rules: frozenset[str],
    fixes: Fixes,
    floor: float,
    narrowed: bool = False,
    payments_rest: bool = False,
    platform_break_z: float | None = None,
) -> str:
    """The releases' and experiments' tests (_context_tests: what 'release' or 'experiment'; `narrowed`, see there)
    and the blocks of hours that collapsed (_hours: what 'outage' or 'payments') in one statement over the same
    sessions, each part with its own order (the hours' date named `first` like the tests', so their rows share every
    column they can); `payments_rest` and `platform_break_z`, see _hours."""
    tests, tested = _context_tests(floor, narrowed)
    hours, blocks = _hours(payments_rest, platform_break_z)
    return f"{sessions_cte(rules, fixes, hours=True)}{tests}{hours} ({tested}) UNION ALL BY NAME ({blocks})"
