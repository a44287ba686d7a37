"""The warehouse expert's data defects (step 2 of warehouse_expert.py's procedure): the data_quality rows the
traces in the raw events show, the fixes that undo each, and their values (observed the dashboard's, baseline the
metrics layer's over the events with the faults undone)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import Any

from metric_tracker_rl.agents.warehouse_findings import (
    DATA_QUALITY,
    REVENUE,
    Finding,
    Rows,
    Statement,
    Window,
    in_parts,
    number_or_nan,
)
from metric_tracker_rl.agents.warehouse_sql import Fixes
from metric_tracker_rl.agents.warehouse_traces import defect_values_sql, revenue_values_sql
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

METRIC_OF_EVENT = {"menu_open": RATE_COLUMNS[0], "product_added_to_cart": RATE_COLUMNS[1]}


class DefectRows(Window):
    """The defects' part of the procedure: rows from the traces, and their values."""

    def defects(self, traces: Rows, sessions: Rows) -> tuple[list[Finding], Fixes]:
        """The data_quality rows the traces show (values still to read) and the fixes that undo them."""
        found: list[Finding] = []
        fixes = Fixes()
        for row in traces:
            date = str(row["first"])
            if date not in self.dates:
                continue
            if row["what"] == "skew":  # stamped a day early: the date before gains what the date loses
                segment = Segment(platform=row["platform"])
                found += [
                    Finding(d, "sessions", DATA_QUALITY, segment, kind="clock_skew")
                    for d in (date, self.shift(date, 1))
                    if d in self.dates
                ]
                fixes = replace(fixes, skewed=True)
            elif row["what"] == "late":
                found.append(Finding(date, "sessions", DATA_QUALITY, Segment(), kind="late_load"))
                fixes = replace(fixes, late_loaded=True)
            elif row["what"] == "consent":
                found.append(
                    Finding(date, "sessions", DATA_QUALITY, Segment(country=row["country"]), kind="consent_drop")
                )
        bots: list[str] = []
        for row in sessions:
            if row["what"] == "retry":
                found.append(
                    Finding(
                        str(row["first"]),
                        RATE_COLUMNS[0],
                        DATA_QUALITY,
                        Segment(platform=row["platform"], app_version=row["app_version"]).normalised(),
                        kind="retry_duplicates",
                    )
                )
                fixes = replace(fixes, retried=True)
            elif row["what"] == "bot":
                bots.append(str(row["detail"]))
        found += self.bot_rows(sessions)
        fixes = replace(fixes, bots=tuple(bots))
        for row in self.context:
            if row["what"] == "tracking":
                recorded = str(row["note"]).split(" is sent as ")
                if len(recorded) == 2 and recorded[0] in METRIC_OF_EVENT:
                    fixes = replace(fixes, renamed=(*fixes.renamed, (recorded[1], recorded[0])))
                    found += [
                        Finding(
                            d,
                            METRIC_OF_EVENT[recorded[0]],
                            DATA_QUALITY,
                            Segment(platform=row["platform"]),
                            kind="tracking_stopped",
                        )
                        for d in self.dates
                        if d >= str(row["first"])
                    ]
        return found, fixes

    def purchase_defects(self, purchases: Rows, found: list[Finding], fixes: Fixes) -> tuple[list[Finding], Fixes]:
        """revenue_usd rows from the purchases' traces: sessions of a version paying twice under two transaction
        ids (an SDK re-sending payments), a platform's purchases in a country sent in a currency it does not use."""
        found = list(found)
        for row in purchases:
            date = str(row["first"])
            if row["what"] == "resend":
                found.append(
                    Finding(
                        date,
                        REVENUE,
                        DATA_QUALITY,
                        Segment(platform=row["platform"], app_version=row["app_version"]).normalised(),
                        kind="transaction_retries",
                    )
                )
                fixes = replace(fixes, resent=True)
            elif row["what"] == "currency":
                found.append(
                    Finding(
                        date,
                        REVENUE,
                        DATA_QUALITY,
                        Segment(platform=row["platform"], country=row["country"]).normalised(),
                        kind="currency_mislabel",
                    )
                )
                fixes = replace(
                    fixes,
                    mislabelled=(
                        *fixes.mislabelled,
                        (date, row["platform"], row["country"], row["detail"], row["meant"]),
                    ),
                )
        return found, fixes

    def bot_rows(self, sessions: Rows) -> list[Finding]:
        """A bot farm's rows: each date its devices opened sessions, on web in their country."""
        farms: dict[tuple[str, str], set[str]] = {}
        for row in sessions:
            if row["what"] == "bot":
                dates = farms.setdefault((row["platform"], row["country"]), set())
                day = self.day(str(row["first"]))
                dates.update(self.dates[day : self.day(str(row["last"])) + 1])
        return [
            Finding(d, RATE_COLUMNS[0], DATA_QUALITY, Segment(platform=p, country=c).normalised(), kind="bot_farm")
            for (p, c), dates in farms.items()
            for d in sorted(dates)
        ]

    def defect_values(self, found: list[Finding], fixes: Fixes) -> Generator[Statement, Rows, list[Finding]]:
        """Observed: the dashboard's; baseline: the metrics layer's with the faults undone (a consent drop's: the
        sessions its app_opens without consent stand for), read together where they can be."""
        if not found:
            return []
        asked = [(i, f.date, *f.segment.values(), f.step) for i, f in enumerate(found)]
        rows = yield from in_parts("defect values", asked, lambda part: defect_values_sql(self.rules, fixes, part))
        observed = {row["i"]: row["observed"] for row in rows}
        baseline: dict[int, Any] = {
            row["i"]: row["denied"] if found[row["i"]].kind == "consent_drop" else row["value"]
            for row in rows
            if found[row["i"]].metric != REVENUE
        }
        revenue = [
            (i, f.date, f.segment.platform, f.segment.country, f.segment.app_version)
            for i, f in enumerate(found)
            if f.metric == REVENUE
        ]
        if revenue:
            rows = yield from in_parts(
                "revenue baselines", revenue, lambda part: revenue_values_sql(self.rules, fixes, part)
            )
            baseline.update({row["i"]: row["value"] for row in rows})
        return [
            replace(f, observed=number_or_nan(observed.get(i)), baseline=number_or_nan(baseline.get(i)))
            for i, f in enumerate(found)
        ]
