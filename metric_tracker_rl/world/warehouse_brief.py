"""What the brief publishes about the warehouse rung: its question, its tables, how a row names a metric of the
metrics layer, the data defects and how each is reported, the benign changes, and the grading rules that are its
own. Public text only; the serving side fills the brief with it and the generator's records are held to it by a
test (tests/test_warehouse_text.py).
"""

from __future__ import annotations

from metric_tracker_rl.spec.dimensions import PLATFORMS
from metric_tracker_rl.spec.published import (
    BASELINE_RULE,
    COUNT_COLUMNS,
    FUNNEL_STEPS,
    GRADING_RULE,
    OVERLAP_CREDIT_RULE,
    RAW_EVENT_DATA_QUALITY_NAMES,
    SEVERITY_RULE,
)
from metric_tracker_rl.world.context import CONTEXT_MEANINGS
from metric_tracker_rl.world.events import REPORTING_TIME_ZONE
from metric_tracker_rl.world.metrics_layer import METRICS_LAYER, STEP_SESSION_COLUMNS
from metric_tracker_rl.world.segment_brief import RELEASE_MEANING
from metric_tracker_rl.world.segments import WEB_VERSION, world_of

WAREHOUSE_OBJECTIVE = (
    "Find every business incident and every data defect in eight weeks of a food-ordering app's raw analytics "
    "events, and report each once per date it covers, on the segment it is confined to. A business incident "
    "changes what users do; a data defect changes only what is recorded, so it reaches the dashboard but no user "
    "did anything different: is this drop real, or is it the data? Every number is the metrics layer's "
    "(metrics_layer). Benign changes are not reported. Some episodes contain no incident.")

# Every table of a warehouse episode, with what it holds; its columns are the SQL tool's schema listing.
WAREHOUSE_TABLES: dict[str, str] = {
    "events": "the raw event export, one row per event: event_date (reporting time zone), event_timestamp (UTC "
              "microseconds), event_name, event_params (a list of key/value records), user_pseudo_id, user_id "
              "(login, null when logged out), device, geo, app_info, traffic_source, platform, privacy_info, "
              "ingestion_timestamp",
    "users": "one row per pseudonymous user: first-touch date, country, platform, channel",
    "internal_accounts": "the staff login ids (user_id) the standing exclusions name",
    "test_devices": "the test device ids the standing exclusions name",
    "known_bots": "the bot device ids the standing exclusions name",
    "currency_rates": "units of each currency per US dollar, by date",
    "tracking_changelog": "each tracking deploy: its date, platform and what changed",
    "dashboard": "the company's dashboard: the metrics layer applied to the events by reporting date, platform, "
                 "app_version and country",
    "releases": "each mobile release's staged rollout: the share of its platform's users offered it, by date",
    "experiment_assignments": "each user assigned to an experiment: its variant and the first date of its events "
                              "in it (the events carry the experiment_variant parameter)",
    **{name: meaning for name, meaning in CONTEXT_MEANINGS.items() if name != "partner_status"},
    "partner_status": "payment partners' status notices by country",
}
SCHEMA_LISTING = "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE NOT internal"

# How a row names a metric of the metrics layer: as counts and rates are named at every tier.
METRIC_NAMES = (
    "A row names a metric as every tier names counts and rates: the counts "
    + ", ".join(f"{count} = {column}" for count, column in zip(COUNT_COLUMNS, STEP_SESSION_COLUMNS, strict=True))
    + " (the metrics layer's counted sessions reaching each step); a rate by its name, the later step's sessions "
    "over the earlier's (" + ", ".join(FUNNEL_STEPS) + " are the dashboard's four rates); revenue_usd by its "
    "dashboard name, on a data defect's row only.")

INCIDENT_REPORTING = (
    "A business incident: one row per date on its root-cause entity and family, with the fields of the segment it "
    "is confined to (any of {fields}; channel and user type by the metrics layer's definitions), its values the "
    "metrics layer's for that segment: observed_value the date's, baseline_value by the published baseline rule "
    "over the segment's daily values (a persistent incident's: the same weekday before it began), delta_value and "
    "severity by their rules. detection_method: query. A date on which the metric has no value in the segment (a "
    "rate over no sessions) or no baseline (no peer has one) is no row, for an incident or a defect.")

# Each data defect: what it records wrongly, the metric its rows are on, which dates are rows, and its segment.
DATA_DEFECTS: dict[str, dict[str, str]] = {
    "retry_duplicates": {"what": "one mobile app version's SDK re-sends sessions' app_open under a new session id",
                         "metric": "app_open_to_menu_open", "dates": "each date it re-sends",
                         "segment": "platform, app_version"},
    "tracking_stopped": {"what": "a tracking deploy renames menu_open or product_added_to_cart on one platform (the "
                                 "tracking_changelog says so)",
                         "metric": "the renamed step's rate (app_open_to_menu_open or "
                                   "menu_open_to_product_added_to_cart)",
                         "dates": "every date from the deploy's to the window's last", "segment": "platform"},
    "consent_drop": {"what": "a country's sessions are denied analytics storage: their events are sent as cookieless "
                             "pings",
                     "metric": "app_opens", "dates": "each date it lasts", "segment": "country"},
    "bot_farm": {"what": "devices not on the known_bots list open web sessions in one country and do nothing else",
                 "metric": "app_open_to_menu_open", "dates": "each date it runs", "segment": "platform, country"},
    "clock_skew": {"what": "one platform's devices stamp a day's events a day early (their ingestion times are "
                           "right)",
                   "metric": "app_opens", "dates": "both: the date that lost its sessions and the date before",
                   "segment": "platform"},
    "late_load": {"what": "most of a date's events are ingested after the metrics layer's cut-off",
                  "metric": "app_opens", "dates": "that date", "segment": "none (all traffic)"},
    "transaction_retries": {"what": "one mobile app version's payment SDK re-sends each payment_successful under a "
                                    "new transaction_id",
                            "metric": "revenue_usd", "dates": "each date it re-sends",
                            "segment": "platform, app_version"},
    "currency_mislabel": {"what": "one mobile platform's app sends one country's purchases with the currency "
                                  "parameter EUR while their values stay in the country's own currency",
                          "metric": "revenue_usd", "dates": "each date it mislabels", "segment": "platform, country"},
}
DEFECT_FAMILY = "instrumentation_data_quality_issue"  # the family a data defect's row names
DEFECT_REPORTING = (
    "A data defect: one row per date it covers (dates), entity_type data_quality, entity_name the metric it "
    f"corrupts (metric; valid: {', '.join(RAW_EVENT_DATA_QUALITY_NAMES)}), anomaly_type {DEFECT_FAMILY}, "
    "detection_method query, the fields of its segment (segment). observed_value: the dashboard's value of that "
    "metric for the segment on the date (a rate: the sum of its numerator rows over the sum of its denominator "
    "rows); baseline_value: the metrics layer's value there over the events as they would have been recorded "
    "without the defect (its trace in the events tells which to repair); delta_value and severity by their rules. "
    "An episode draws two or three defects, each on dates no incident or other defect holds, nor the date before "
    "or after; one that finds no such dates is left out.")

BENIGN_CHANGES = (
    "Not reported: internal load tests and listed bots (the standing exclusions remove them, so the raw events "
    "move and the dashboard does not), campaigns (more, lower-intent traffic in their channel and country), "
    "holidays (lower traffic in their country), experiments' intended effects on their target step in their arm "
    "(a rise or a fall), and changes of traffic mix between segments (the aggregate's rates move, no segment's "
    "own).")

KIND_RULE = (
    "A row's key is its date, entity_type and entity_name, so the entity_type says which it is: a data defect "
    "reported as an incident (event_count, conversion_rate or funnel_step), or an incident reported as "
    "data_quality, matches no expected key: the expected row is missed and the row is a false positive.")
WAREHOUSE_CREDIT_RULE = OVERLAP_CREDIT_RULE.replace(
    "the app_opens of S on the incident's date as observed (daily_by_segment)",
    "the metrics layer's sessions of S on the row's date over the events as recorded (channel and user type by its "
    "definitions)").replace("incident's", "expected row's").replace("incident", "expected row")


# What a release can do, as the release kind's definition points to it: the releases table stands where the other
# tiers annotate a release.
WAREHOUSE_RELEASE_MEANING = RELEASE_MEANING.replace(
    "A release annotation starts an app version's staged rollout on one platform (get_releases).",
    "A release starts an app version's staged rollout on one platform (the releases table).").replace(
    "at deep", "at warehouse")

WAREHOUSE_SYSTEM_PROMPT = """\
You investigate a product's analytics warehouse (eight weeks of a food-ordering app's raw events, their side
tables, a metrics layer and the company's dashboard) with read-only SQL and submit one report that a grader
scores.

Work like an analyst:
- Read the brief (the tables, how each finding is reported, the grading), then metrics_layer: every reported
  number is defined there, and the dashboard applies it to the events.
- For each move of the dashboard ask whether it is real or the data: a business incident changes what users do;
  a data defect changes only what is recorded, and the raw events or the tracking changelog show its trace.
- Report each business incident on its root-cause entity, family and segment, and each data defect as a
  data_quality row on the metric it corrupts, one row per date; never a side effect or a benign change. Every
  extra row lowers precision; a missed one lowers recall.
- Finish with one submission: submit_report(rows). An empty report is right when nothing is anomalous.
Your steps are limited; be efficient and keep any text short."""


# The published baseline rule, as the warehouse reads it (eight weeks; the releases table where the other tiers
# have a tool).
WAREHOUSE_BASELINE_RULE = BASELINE_RULE.replace(
    "(three peers in four weeks, seven in eight: see baseline_dates)", "(seven peers in eight weeks)").replace(
    "(get_releases)", "(the releases table)")
WAREHOUSE_GRADING_RULE = GRADING_RULE.split(" with segments (")[0].rstrip(";") + (
    ", times the segment credit (below). precision = " + GRADING_RULE.split("precision = ", 1)[1])


def warehouse_brief(dimensions: tuple[str, ...]) -> dict[str, object]:
    """What the brief publishes about a warehouse tier's world (the same for every episode of it)."""
    world = world_of(dimensions)
    daily = {d.field: ",".join(d.values) for d in world.daily}
    return {
        "dimensions": {"platform": ",".join(PLATFORMS), "country": ",".join(world.country.values),
                       "app_version": f"{WEB_VERSION} on web; on ios and android the version live at the window's "
                                      "start and those of the releases table",
                       **daily},
        "tables": WAREHOUSE_TABLES,
        "columns": f"every table's columns: {SCHEMA_LISTING} (the query tool)",
        "metrics_layer": (f"every reported number is defined by the metrics layer (the metrics_layer tool: "
                          f"{', '.join(METRICS_LAYER)}); reporting dates are {REPORTING_TIME_ZONE}'s. The dashboard "
                          "table is the company's pipeline applying it to the events: a business incident moves "
                          "both, a data defect the dashboard only as recorded."),
        "metric_names": METRIC_NAMES,
        "incident_reporting": INCIDENT_REPORTING.format(fields=", ".join(world.fields)),
        "data_defects": {kind: "; ".join(f"{key}: {value}" for key, value in text.items())
                         for kind, text in DATA_DEFECTS.items()},
        "defect_reporting": DEFECT_REPORTING,
        "baseline_rule": WAREHOUSE_BASELINE_RULE,
        "severity_rule": SEVERITY_RULE,
        "grading": f"{WAREHOUSE_GRADING_RULE} {KIND_RULE} {WAREHOUSE_CREDIT_RULE}",
    }
