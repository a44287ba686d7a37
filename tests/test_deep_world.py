"""The deep tier's world: five dimensions (platform, eight countries, app version, acquisition channel, user type),
hourly counts per cell and daily counts per leaf. It builds deterministically, every grain sums to the one above
it, each dimension's shares and conversion profiles (dimensions.DIMENSIONS) hold in the data, and the report, the
tools and SQL reach the new dimensions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from core_helpers import reset_episode

from metric_tracker_rl.catalog.dimensions import DIMENSIONS
from metric_tracker_rl.catalog.published import CONVERSION_BY_NAME, COUNT_COLUMNS, DIFFICULTIES
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.catalog.validation import validate_rows
from metric_tracker_rl.grading.grader import segment_match
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.world.segment_brief import segmented_brief
from metric_tracker_rl.world.segments import Segment, SegmentedData, world_of

DEEP = "deep"
WORLD = world_of(TIERS[DEEP].dimensions)
SWEEP_SEEDS = range(8)
PAYMENT = CONVERSION_BY_NAME["app_open_to_payment_successful"]
OPENS, PAYMENTS = COUNT_COLUMNS.index(PAYMENT.denominator), COUNT_COLUMNS.index(PAYMENT.numerator)


def deep_segments(seed: int, **settings: object) -> SegmentedData:
    segments = reset_episode(difficulty=DEEP, seed=seed, **settings).public.segments
    assert segments is not None
    return segments


def test_deep_is_listed_after_frontier_and_reachable_by_reset() -> None:
    """Deep comes after every earlier tier (and abyss after it), so the eval split's earlier indices keep naming
    their episodes."""
    assert DIFFICULTIES.index(DEEP) == DIFFICULTIES.index("frontier") + 1
    observation = MetricTrackerRlEnvironment().reset(seed=0, difficulty=DEEP)
    assert observation.status == "ready" and observation.config["difficulty"] == DEEP


def test_deep_has_five_dimensions_with_the_values_the_issue_asks_for() -> None:
    values = deep_segments(0).dimension_values()
    assert list(values) == ["platform", "country", "app_version", "channel", "user_type"]
    assert len(values["country"]) >= 8 and len(values["channel"]) >= 4
    assert set(values["user_type"]) == {"new", "returning"}
    assert len(values["app_version"]) > 1 + 1  # web's label and the mobile versions with their releases


def test_deep_builds_the_same_episode_twice() -> None:
    first, second = (reset_episode(difficulty=DEEP, seed=7) for _ in range(2))
    assert first.public.segments is not None and second.public.segments is not None
    assert np.array_equal(first.public.segments.hourly, second.public.segments.hourly)
    assert np.array_equal(first.public.segments.leaves, second.public.segments.leaves)
    assert first.truth.expected_rows == second.truth.expected_rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_grain_sums_to_the_one_above(seed: int) -> None:
    episode = reset_episode(difficulty=DEEP, seed=seed)
    segments = episode.public.segments
    assert segments is not None and segments.split is not None
    assert np.array_equal(segments.hourly.sum(axis=0), episode.public.data.hourly)  # cells -> aggregate
    per_cell = segments.leaves.reshape(segments.layout.size, segments.split.size, segments.num_days, -1).sum(axis=1)
    assert np.array_equal(per_cell, segments.daily)  # leaves -> cells
    assert (segments.leaves >= 0).all()


def _sweep() -> list[SegmentedData]:
    return [deep_segments(seed) for seed in SWEEP_SEEDS]


@pytest.fixture(scope="module")
def sweep() -> list[SegmentedData]:
    return _sweep()


def _share_and_conversion(segments: SegmentedData, segment: Segment) -> tuple[float, float]:
    """A segment's share of the window's opens, and its opens-to-payment conversion relative to the aggregate's."""
    mine, every = segments.segment_daily(segment).sum(axis=0), segments.leaves.sum(axis=(0, 1))
    return mine[OPENS] / every[OPENS], (mine[PAYMENTS] / mine[OPENS]) / (every[PAYMENTS] / every[OPENS])


@pytest.mark.parametrize("key", ["country_wide", "channel", "user_type", "platform"])
def test_each_dimensions_shares_and_conversion_profile_hold(sweep: list[SegmentedData], key: str) -> None:
    """Over a seed sweep, each value carries its published share of opens (within 3% of it: incidents, benign
    swings and every cell's and leaf's day noise move it) and converts opens to payments relative to the
    aggregate as its profile says (its factors' product over the share-weighted mean, within 4%)."""
    dimension = DIMENSIONS[key]
    overall = float(sum(dimension.share[v] * np.prod(dimension.rate_factors[v]) for v in dimension.values))
    for value in dimension.values:
        measured = np.array([_share_and_conversion(s, Segment(**{dimension.field: value})) for s in sweep])
        share, conversion = measured.mean(axis=0)
        assert share == pytest.approx(dimension.share[value], rel=0.03), value
        assert conversion == pytest.approx(np.prod(dimension.rate_factors[value]) / overall, rel=0.04), value


def test_paid_social_and_new_users_convert_lowest(sweep: list[SegmentedData]) -> None:
    for segments in sweep:
        channels = {v: _share_and_conversion(segments, Segment(channel=v))[1] for v in DIMENSIONS["channel"].values}
        assert min(channels, key=channels.__getitem__) == "paid_social"
        new, returning = (_share_and_conversion(segments, Segment(user_type=v))[1] for v in ("new", "returning"))
        assert new < returning


def test_a_segment_of_a_daily_dimension_has_no_hourly_counts() -> None:
    with pytest.raises(ValueError, match="hourly counts exist per platform, country, app_version only"):
        deep_segments(0).segment_funnel(Segment(channel="organic"))


# --- the report ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("submitted", "expected", "match"),
    [
        (Segment("android", "IN", None, None, "new"), Segment("android", "IN", None, None, "new"), "exact"),
        (Segment("android", "IN"), Segment("android", "IN", None, None, "new"), "parent"),
        (Segment(channel="paid_social"), Segment("web", None, None, "paid_social"), "parent"),
        (Segment("web", None, None, "paid_social"), Segment(platform="web"), "over_specific"),
        (Segment("web", None, None, "organic"), Segment("web", None, None, "paid_social"), "wrong"),
        (Segment("ios", None, "6.11.0", None, "new"), Segment("ios", None, "6.12.0", None, "new"), "wrong_version"),
        (Segment("ios", None, "6.11.0", None, "returning"), Segment("ios", None, "6.12.0", None, "new"), "wrong"),
        (Segment(user_type="new"), Segment(), "over_specific"),
    ],
)
def test_the_grader_matches_segments_of_any_dimension(submitted: Segment, expected: Segment, match: str) -> None:
    assert segment_match(submitted, expected) == match


def _row(**segment: str) -> MetricSubmissionRow:
    return MetricSubmissionRow(
        date="2026-03-10",
        entity_type="event_count",
        entity_name="app_opens",
        anomaly_type="absolute_drop_in_event_count",
        detection_method="query",
        baseline_value=1.0,
        observed_value=0.5,
        delta_value=-0.5,
        severity="high",
        **segment,
    )


def test_a_row_names_a_dimension_only_where_the_episode_has_it() -> None:
    dates = ["2026-03-10"]
    deep = deep_segments(0).dimension_values()
    frontier = reset_episode(difficulty="frontier", seed=0).public.segments
    assert frontier is not None
    assert validate_rows([_row(channel="paid_social", user_type="new")], dates, deep) == {}
    assert "valid: organic" in validate_rows([_row(channel="tv")], dates, deep)[0].message
    assert (
        "no channel dimension"
        in validate_rows([_row(channel="organic")], dates, frontier.dimension_values())[0].message
    )


def test_a_row_without_the_deep_fields_dumps_as_before() -> None:
    assert "channel" not in _row().model_dump() and "user_type" not in _row().model_dump_json()
    assert _row(channel="referral").model_dump()["channel"] == "referral"


# --- tools and SQL ------------------------------------------------------------------------------------------


def _call(env: MetricTrackerRlEnvironment, method: str, **arguments: object) -> dict:
    observation = env.step(MetricTrackerRlAction(analysis_method=method, analysis_args=arguments))
    assert observation.status == "ok", observation.message
    assert observation.analysis_result is not None
    return observation.analysis_result


@pytest.fixture(scope="module")
def deep_env() -> MetricTrackerRlEnvironment:
    env = MetricTrackerRlEnvironment()
    env.reset(seed=5, difficulty=DEEP)
    return env


def test_sql_reads_daily_by_segment_with_a_column_per_dimension(deep_env: MetricTrackerRlEnvironment) -> None:
    result = _call(
        deep_env,
        "query",
        sql="SELECT channel, user_type, sum(app_opens) AS opens, count(*) AS n "
        "FROM daily_by_segment GROUP BY channel, user_type ORDER BY 1, 2",
    )
    segments = deep_segments(5)
    rows = result["rows"]
    assert [(r["channel"], r["user_type"]) for r in rows] == sorted(
        (c, u) for c in DIMENSIONS["channel"].values for u in DIMENSIONS["user_type"].values
    )
    for row in rows:
        expected = segments.segment_daily(Segment(channel=row["channel"], user_type=row["user_type"]))
        assert row["opens"] == int(expected[:, OPENS].sum())
        assert row["n"] == segments.layout.size * segments.num_days
    hourly = _call(deep_env, "query", sql="SELECT count(*) AS n FROM hourly_by_segment")["rows"]
    assert hourly == [{"n": segments.layout.size * segments.num_days * 24}]


@pytest.mark.parametrize("dimension", ["channel", "user_type", "country"])
def test_compare_segments_breaks_down_every_dimension(deep_env: MetricTrackerRlEnvironment, dimension: str) -> None:
    result = _call(deep_env, "compare_segments", metric_name="app_opens", date="2026-03-10", dimension=dimension)
    segments = deep_segments(5)
    day = list(segments.segment_funnel(Segment()).dates).index("2026-03-10")
    assert [row[dimension] for row in result["rows"]] == segments.dimension_values()[dimension]
    for row in result["rows"]:
        expected = segments.segment_daily(Segment(**{dimension: row[dimension]}))[day, OPENS]
        assert row["observed_value"] == expected
    assert sum(row["app_open_share"] for row in result["rows"]) == pytest.approx(1.0, abs=1e-3)


# The drill-down: one or two dimensions inside a cuboid, each row read against the sums of
# the leaves it covers (segment_daily), an app version always with its platform.
DRILL_DOWNS = [
    ("country,channel", "platform=android,user_type=new"),
    ("user_type", "platform=ios,country=IN,channel=paid_social"),
    ("app_version", "country=BR"),
    ("app_version,user_type", "platform=ios"),
    ("channel", "platform=ios,app_version=6.{base}.0"),
    ("platform,country", ""),
]


@pytest.mark.parametrize(("dimension", "within"), DRILL_DOWNS)
def test_compare_segments_drills_down_inside_a_cuboid(
    deep_env: MetricTrackerRlEnvironment, dimension: str, within: str
) -> None:
    segments = deep_segments(5)
    ios_versions = segments.layout.platform_versions("ios")
    within = within.replace("6.{base}.0", ios_versions[0])
    date = "2026-03-18"
    result = _call(
        deep_env,
        "compare_segments",
        metric_name="menu_open_to_product_added_to_cart",
        date=date,
        dimension=dimension,
        within=within,
    )
    cuboid = dict(pair.split("=") for pair in within.split(",") if pair)
    grouped = dimension.split(",")
    day = list(segments.segment_funnel(Segment()).dates).index(date)
    rows = result["rows"]
    # Every row names the cuboid and one value of each grouped dimension (a version with its platform) ...
    named = [
        tuple(row.get(field) for field in ("platform", "country", "app_version", "channel", "user_type"))
        for row in rows
    ]
    assert len(set(named)) == len(rows)
    values = segments.dimension_values()
    expected_count = 1
    for name in grouped:
        if name == "app_version":
            platforms = [cuboid["platform"]] if "platform" in cuboid else values["platform"]
            expected_count *= sum(len(segments.layout.platform_versions(p)) for p in platforms)
        else:
            expected_count *= len(values[name])
    assert len(rows) == expected_count
    total_opens = segments.segment_daily(Segment(**cuboid))[day, OPENS]
    for row in rows:
        assert all(row[field] == value for field, value in cuboid.items())
        fields = {
            field: row[field]
            for field in ("platform", "country", "app_version", "channel", "user_type")
            if field in row
        }
        daily = segments.segment_daily(Segment(**fields))[day]
        definition = CONVERSION_BY_NAME["menu_open_to_product_added_to_cart"]
        numerator = daily[COUNT_COLUMNS.index(definition.numerator)]
        denominator = daily[COUNT_COLUMNS.index(definition.denominator)]
        if denominator:
            assert row["observed_value"] == pytest.approx(numerator / denominator)
        else:  # a release not rolled out yet: no traffic, no rate
            assert row["observed_value"] is None and row["app_open_share"] == 0
        assert row["app_open_share"] == pytest.approx(daily[OPENS] / total_opens, abs=1e-4)
    assert sum(row["app_open_share"] for row in rows) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"dimension": "region"}, "valid: platform, country, app_version, channel, user_type"),
        ({"dimension": "country,channel,user_type"}, "one or two different dimensions"),
        ({"dimension": "country,country"}, "one or two different dimensions"),
        ({"dimension": "country", "within": "country=US"}, "within names country, which the breakdown groups by"),
        ({"dimension": "country", "within": "channel=tv"}, "valid: organic, paid_search, paid_social, referral"),
        ({"dimension": "country", "within": "channel"}, "field=value pairs"),
        ({"dimension": "country", "within": "app_version=web,user_type=new"}, "with its platform"),
        ({"dimension": "channel", "within": "region=EU"}, "valid: platform, country, app_version, channel, user_type"),
    ],
)
def test_a_bad_drill_down_is_one_error_that_lists_the_valid_options(
    deep_env: MetricTrackerRlEnvironment, arguments: dict, message: str
) -> None:
    observation = deep_env.step(
        MetricTrackerRlAction(
            analysis_method="compare_segments",
            analysis_args={"metric_name": "app_opens", "date": "2026-03-10", **arguments},
        )
    )
    assert observation.status == "error" and message in observation.message, observation.message


def test_compare_segments_names_the_dimensions_an_episode_has() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(seed=0, difficulty="frontier")
    observation = env.step(
        MetricTrackerRlAction(
            analysis_method="compare_segments",
            analysis_args={"metric_name": "app_opens", "date": "2026-03-10", "dimension": "channel"},
        )
    )
    assert observation.status == "error" and "no channel dimension" in observation.message


def test_the_objective_and_the_brief_name_deeps_dimensions() -> None:
    observation = MetricTrackerRlEnvironment().reset(seed=0, difficulty=DEEP)
    assert "platform / country / app_version / channel / user_type" in observation.instruction + observation.message
    brief = segmented_brief(DEEP)
    assert list(brief["dimensions"]) == list(WORLD.fields)  # type: ignore[arg-type]
    assert brief["dimensions"]["channel"] == ",".join(DIMENSIONS["channel"].values)  # type: ignore[index]
    assert "daily_by_segment" in str(brief["traffic_split"]) and "paid_social" in str(brief["conversion"])
    assert "channel" not in segmented_brief("frontier")["dimensions"]  # type: ignore[operator]


def test_the_documented_table_of_dimensions_is_the_registry() -> None:
    """docs/data.md's table of deep's dimensions shows each one's values and shares as dimensions.DIMENSIONS has
    them."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    lines = text[text.index("## The deep tier") :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    documented = []
    for line in lines[start + 2 :]:
        if not line.startswith("| "):
            break
        documented.append([cell.strip() for cell in line.strip("|").split(" | ")])
    keys = TIERS[DEEP].dimensions
    assert len(documented) == len(keys)
    for (name, values, shares, _), key in zip(documented, keys, strict=True):
        dimension = DIMENSIONS[key]
        assert name.split(" ")[0] == dimension.field
        if dimension.share:
            assert values == ", ".join(dimension.values)
            assert shares == " / ".join(f"{100 * dimension.share[v]:.0f}" for v in dimension.values) + "%"
