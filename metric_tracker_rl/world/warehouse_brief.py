"""What the brief publishes about the warehouse rung: its question, its tables, how a row names a metric of the
metrics layer, the data defects and how each is reported, the benign changes, and the grading rules that are its
own. Public text only; the serving side fills the brief with it and the generator's records are held to it by a
test (tests/test_warehouse_text.py).
"""

from __future__ import annotations

import textwrap
from typing import Any

from metric_tracker_rl.catalog.dimensions import PLATFORMS
from metric_tracker_rl.catalog.published import (
    BASELINE_RULE,
    COUNT_COLUMNS,
    DETECTION_METHOD_RULE,
    GRADING_RULE,
    OVERLAP_CREDIT_RULE,
    SEVERITY_RULE,
    config_meaning,
)
from metric_tracker_rl.world.metrics_layer import STEP_SESSION_COLUMNS
from metric_tracker_rl.world.segment_brief import RELEASE_MEANING
from metric_tracker_rl.world.segments import WEB_VERSION, world_of

WAREHOUSE_OBJECTIVE = (
    "Find every business incident and every data defect in eight weeks of a food-ordering app's raw analytics "
    "events, and report each once per date it covers, on the segment it is confined to. A business incident "
    "changes what users do; a data defect only what is recorded. Every number is the metrics layer's "
    "(metrics_layer). Benign changes are not reported. Some episodes contain no business incident."
)

# Every table of a warehouse episode, with what it holds (the SQL tool lists their columns).
WAREHOUSE_TABLES: dict[str, str] = {
    "events": "the raw event export, one row per event (user_id: the login, null when logged out)",
    "users": "pseudonymous users: first-touch date, country, platform, channel",
    "internal_accounts": "staff user_ids (a standing exclusion)",
    "test_devices": "test device_ids (a standing exclusion)",
    "known_bots": "bot device_ids (a standing exclusion)",
    "currency_rates": "units of each currency per US dollar, by date",
    "tracking_changelog": "tracking deploys",
    "dashboard": "the metrics layer applied to the events, by reporting date, platform, app_version and country",
    "releases": "each mobile release's staged rollout: the share of its platform's users offered it, by date",
    "experiment_assignments": "each user in an experiment, its variant and first date (events carry the "
    "experiment_variant parameter)",
    "experiments": "each experiment's arm (the fields it names), target step and dates",
    "campaigns": "marketing campaigns",
    "holidays": "public holidays, by country (a null country: every country)",
    "partner_status": "payment partners' status notices",
}
# The tables the metrics layer defines (the standing exclusions' lists, the rates, the dashboard): the brief leaves
# them to it.
LAYER_TABLES = ("internal_accounts", "test_devices", "known_bots", "currency_rates", "dashboard")
SCHEMA_LISTING = "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE NOT internal"

# How a row names a metric of the metrics layer: as counts and rates are named at every tier.
METRIC_NAMES = (
    "A count is named by its funnel event: "
    + ", ".join(f"{count} = {column}" for count, column in zip(COUNT_COLUMNS, STEP_SESSION_COLUMNS, strict=True))
    + " (counted sessions reaching each step); a rate by its name in the metrics layer; revenue_usd by its "
    "name there, on a data defect's row only."
)

INCIDENT_REPORTING = (
    "A business incident: one row per date on its root-cause entity and family, with its segment's fields (any of "
    "{fields}; channel and user_type as the metrics layer defines them), its values the metrics layer's there: "
    "observed_value the date's, baseline_value by baseline_rule (an incident of several dates too: each date's row "
    "against that date's weekday in the other weeks, as any date's), delta_value and severity by their rules; "
    "detection_method query. A date whose metric has no value "
    "in the segment (a rate over no sessions) or no baseline (no peer has one) is no row, for a defect too."
)

# Each data defect: what it records wrongly, the metric its rows are on, which dates are rows, and its segment.
DATA_DEFECTS: dict[str, dict[str, str]] = {
    "retry_duplicates": {
        "what": "one mobile app version's SDK re-sends sessions' app_open under a new session id",
        "metric": "app_open_to_menu_open",
        "dates": "each date it re-sends",
        "segment": "platform, app_version",
    },
    "tracking_stopped": {
        "what": "a tracking deploy renames menu_open or product_added_to_cart on one platform (the "
        "tracking_changelog says so)",
        "metric": "the renamed step's rate (app_open_to_menu_open or menu_open_to_product_added_to_cart)",
        "dates": "from the deploy's to the window's last",
        "segment": "platform",
    },
    "consent_drop": {
        "what": "a country's sessions are denied analytics storage: their events are sent as cookieless pings",
        "metric": "app_opens",
        "dates": "each date it lasts",
        "segment": "country",
    },
    "bot_farm": {
        "what": "devices not on the known_bots list open web sessions in one country and do nothing else",
        "metric": "app_open_to_menu_open",
        "dates": "each date it runs",
        "segment": "platform, country",
    },
    "clock_skew": {
        "what": "one platform's devices stamp a day's events a day early (their ingestion times are right)",
        "metric": "app_opens",
        "dates": "the date that lost its sessions and the date before",
        "segment": "platform",
    },
    "late_load": {
        "what": "most of a date's events are ingested after the metrics layer's cut-off",
        "metric": "app_opens",
        "dates": "that date",
        "segment": "none (all traffic)",
    },
    "transaction_retries": {
        "what": "one mobile app version's payment SDK re-sends each payment_successful under a new transaction_id",
        "metric": "revenue_usd",
        "dates": "each date it re-sends",
        "segment": "platform, app_version",
    },
    "currency_mislabel": {
        "what": "one mobile platform's app sends one country's purchases with the currency "
        "parameter EUR while their values stay in the country's own currency",
        "metric": "revenue_usd",
        "dates": "each date it mislabels",
        "segment": "platform, country",
    },
}
DEFECT_FAMILY = "instrumentation_data_quality_issue"  # the family a data defect's row names
# The families the warehouse's incident kinds are reported as (its brief lists them; tests/test_text_truth.py holds
# them to the kinds the tier draws): with DEFECT_FAMILY, every family its report tool offers.
WAREHOUSE_INCIDENT_FAMILIES = ("absolute_drop_in_event_count", "funnel_break", "rate_drop_from_median")
DEFECT_REPORTING = (
    f"A data defect: one row per date it covers, entity_type data_quality, entity_name its metric, anomaly_type "
    f"{DEFECT_FAMILY}, detection_method query, its segment's fields; observed_value the dashboard's value of the "
    "metric for the segment on the date (a rate: its numerator rows' sum over its denominator rows'), baseline_value "
    "the metrics layer's there over the events as they would have been recorded without the defect (its trace in "
    "the events shows what to repair): only what the defect changed is undone, so a session denied consent or an "
    "event ingested after the cut-off that would have been so without it stays left out, as on every date; "
    "delta_value and severity by their rules. An episode holds two or three "
    "defects, each on dates no incident or other defect holds, nor the date before or after (one with no such "
    "dates is left out)."
)

# What tells a benign change of a segment's sessions from a count incident, by what the data show (every benign change
# of demand or mix the generator draws moves this way; tests/test_text_truth.py holds the truth to it).
UNIFORM_MOVE = (
    "a whole platform's or country's sessions rising or falling all day by one share in each of its "
    "channels, user types and hours, converting as before"
)
BENIGN_CHANGES = (
    "Not reported: internal load tests and listed bots (the standing exclusions remove them: the raw events move, "
    "the dashboard does not), campaigns (more, lower-intent traffic from their channel in their country, whose own "
    "conversion stays as it was), holidays (lower traffic with a weekend-like daily pattern in their country, in "
    "every country where the country is null), "
    "experiments' intended effects on their target step in their arm (a rise or a fall), and changes of demand or "
    f"of traffic mix: {UNIFORM_MOVE} (the aggregate's rates may move, no segment's own)."
)

KIND_RULE = (
    "A row's key is its date, entity_type and entity_name, so a data defect reported as an incident (event_count, "
    "conversion_rate or funnel_step), or an incident reported as data_quality, matches no expected key: a missed "
    "row and a false positive."
)
WAREHOUSE_CREDIT_RULE = (
    OVERLAP_CREDIT_RULE.replace(
        "the app_opens of S on the incident's date as observed (daily_by_segment)",
        "the metrics layer's sessions of S on the row's date over the events as recorded",
    )
    .replace("incident's", "expected row's")
    .replace("incident", "expected row")
)


# What a release can do, as the release kind's definition points to it: the releases table stands where the other
# tiers annotate a release.
WAREHOUSE_RELEASE_MEANING = RELEASE_MEANING.replace(
    "A release annotation starts an app version's staged rollout on one platform (get_releases).",
    "A release starts an app version's staged rollout on one platform (the releases table).",
).replace("at deep", "at warehouse")

# The config settings a warehouse brief states once elsewhere: the dimensions by its segments, the count by its
# incidents line, the submissions by submissions_remaining.
STATED_ELSEWHERE = ("dimensions", "anomaly_count_range", "max_submissions")


def warehouse_brief_data(shown: dict[str, Any]) -> dict[str, Any]:
    """A brief's data (view.prompt.brief_data, as a tier of counts states it) as the warehouse states it: no
    setting said twice, no conversion metrics (its metric_names and the metrics layer name and define the rates),
    no family's detection methods (one tool finds every row: query), and a release's meaning where the other tiers
    list their calendar notes (the warehouse has none)."""
    config = {key: value for key, value in shown["config"].items() if key not in STATED_ELSEWHERE}
    families = [
        {key: value for key, value in family.items() if key != "detection_methods"} for family in shown["families"]
    ]
    return {
        **{key: value for key, value in shown.items() if key != "conversion_metrics"},
        "config": config,
        "config_meaning": config_meaning(config),
        "families": families,
        "calendar_note_kinds": {"release": WAREHOUSE_RELEASE_MEANING},
    }


# Where a data defect's trace may be: a rule over the tables, never a mechanism. A defect changes only what the export
# recorded, so only these tables (and those computed from them) can differ from what users did; every registered
# mechanism is held to it (tests/test_text_truth.py).
TRACE_TABLES = ("events", "users", "currency_rates", "tracking_changelog")
COMPUTED_TABLES = ("dashboard", "experiment_assignments")
TRACE_RULE = (
    f"a data defect changes only what was recorded, so its trace is only in {', '.join(TRACE_TABLES[:-1])} "
    f"or {TRACE_TABLES[-1]}, or what is computed from them ({', '.join(COMPUTED_TABLES)})"
)

WAREHOUSE_SYSTEM_PROMPT = textwrap.fill(
    "You investigate a product's analytics warehouse (a food-ordering app's raw events, side tables, a metrics layer "
    "and a dashboard) with read-only SQL and submit one report that a grader scores. Read the brief, then "
    f"metrics_layer: it defines every reported number. For each move of the dashboard ask whether it is real or the "
    f"data: {TRACE_RULE}. Report each finding as the brief says, never a side effect or a benign change, in one "
    "submit_report(rows); an empty report is right when nothing is anomalous. Your steps are limited; be efficient "
    "and keep any text short.",
    width=116,
    break_on_hyphens=False,
)


# The published rules, as the warehouse reads them: eight weeks; the releases table where the other tiers have a
# tool; no robust z, hourly_mix or detection tools here (every row's method is query). Each replaced phrase is
# checked present (tests/test_warehouse_text.py), so a change of the shared text cannot leave a rule unshortened.
BASELINE_REPLACED = {
    "(three peers in four weeks, seven in eight: see baseline_dates)": "(seven peers in eight weeks)",
    ", so one unusual peer cannot move it but a change that lasts for weeks can": "",
    "; robust z = delta_value / (1.4826 * median |delta_value| over the entity's dates)": "",
    "(get_releases)": "(the releases table)",
}
SEVERITY_REPLACED = {
    " hourly_mix: by |delta| (a distance in [0, 1]): < 0.05 low, < 0.10 medium, < 0.20 high, else critical. Every "
    "other entity type: by": " By"
}
# When a row's detection_method earns its credit here: query is accepted once the episode has run one
# (published.METHODS_ACCEPTED_WHEN_USED; the environment counts a call that ran).
QUERY_CREDIT = "query, credited only once the episode has run a query that succeeded"
GRADING_REPLACED = {
    f"({DETECTION_METHOD_RULE})": f"({QUERY_CREDIT})",
    " So report each incident on its root-cause key, one row per date it lasts.": "",
    "One graded submission by default; it ends the episode, and its result then lists every submitted "
    "row's verdict and the expected keys no row reported.": "One graded submission; it ends the episode.",
}


def replaced(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


WAREHOUSE_BASELINE_RULE = replaced(BASELINE_RULE, BASELINE_REPLACED)
WAREHOUSE_SEVERITY_RULE = replaced(SEVERITY_RULE, SEVERITY_REPLACED)
_GRADING = replaced(GRADING_RULE, GRADING_REPLACED)
WAREHOUSE_GRADING_RULE = _GRADING.split(" with segments (")[0].rstrip(";") + (
    ", times the segment credit (below). precision = " + _GRADING.split("precision = ", 1)[1]
)
METRICS_LAYER_NOTE = (
    "every reported number is defined by the metrics layer (the metrics_layer tool, which also says "
    f"what {', '.join(LAYER_TABLES)} hold); the dashboard is the company's pipeline applying it to "
    "the events: a business incident moves both, a data defect only the dashboard's numbers as "
    "recorded."
)


def warehouse_brief(dimensions: tuple[str, ...]) -> dict[str, object]:
    """What the brief publishes about a warehouse tier's world (the same for every episode of it)."""
    world = world_of(dimensions)
    daily = {d.field: ",".join(d.values) for d in world.daily}
    return {
        "dimensions": {
            "platform": ",".join(PLATFORMS),
            "country": ",".join(world.country.values),
            "app_version": f"{WEB_VERSION} on web; on ios and android the version live at the window's "
            "start and those of the releases table",
            **daily,
        },
        "tables": {name: text for name, text in WAREHOUSE_TABLES.items() if name not in LAYER_TABLES},
        "metrics_layer": METRICS_LAYER_NOTE,
        "metric_names": METRIC_NAMES,
        "incident_reporting": INCIDENT_REPORTING.format(fields=", ".join(world.fields)),
        "data_defects": [{"defect": kind, **text} for kind, text in DATA_DEFECTS.items()],
        "defect_reporting": DEFECT_REPORTING,
        "baseline_rule": WAREHOUSE_BASELINE_RULE,
        "severity_rule": WAREHOUSE_SEVERITY_RULE,
        "grading": f"{WAREHOUSE_GRADING_RULE} {KIND_RULE} {WAREHOUSE_CREDIT_RULE}",
    }
