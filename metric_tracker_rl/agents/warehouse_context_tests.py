"""The warehouse expert's tests of the context (part of step 3 of warehouse_expert.py's procedure): each release's
version over its first dates (a regression from the rollout's first date, narrowed to one country, channel or user
type where only they fell) and each experiment's arm over its dates (a breakage of a step it does not target)."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.agents.warehouse_findings import (
    RATE_DROP,
    Finding,
    Rows,
    Window,
    arm_segment,
    numbers,
    pooled_z,
    segment_of,
)
from metric_tracker_rl.agents.warehouse_scans import MIN_EXPECTED
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS

REGRESSION_STEPS = (3, 4)  # the late steps a release breaks (cart to order, order to payment)
# Decision thresholds (z of a fall against the same weekday's other dates).
RELEASE_Z = 4.5  # a version's pooled fall over its first dates
RELEASE_FIRST_Z = 3.0  # its fall over its first three dates: a regression starts with its rollout
EXPERIMENT_Z = 3.5  # an arm's pooled fall on a step it does not target, over its dates
REGRESSION_DATES = (3, 6)  # a regression lasts so many dates from its rollout's first
# The rest of a version a release broke for one group of users alone falls no further than NARROWED_REST_Z, and
# stands NARROWED_SAME_Z above the fall it would show had it fallen as the group did.
NARROWED_REST_Z, NARROWED_SAME_Z = 1.5, 2.5


def narrowing(row: dict[str, Any]) -> bool:
    """Whether a release test reads the version's users of one country, channel or user type only."""
    return any(row.get(name) is not None for name in ("country", "channel", "user_type"))


def remainder(whole: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """A test of the whole less its part, date by date (both read from the same first date on; the part may stop
    earlier, so the remainder stops there too)."""
    return {
        name: [a - b for a, b in zip(numbers(whole[name]), numbers(part[name]), strict=False)]
        for name in ("r", "e", "w")
    }


class ContextTests(Window):
    """The releases' and experiments' part of the procedure, from the rows of their tests."""

    def releases(self, tests: Rows) -> list[Finding]:
        """Per release, its version's strongest pooled fall over its first three to six dates, when beyond RELEASE_Z
        and its first three dates fell."""
        best: dict[str, tuple[float, dict[str, Any], int]] = {}
        for row in tests:
            if row["what"] != "release" or row["k"] not in REGRESSION_STEPS or narrowing(row):
                continue
            if (pooled_z(row, REGRESSION_DATES[0]) or 0.0) > -RELEASE_FIRST_Z:
                continue  # a fall that starts later is not the release's (a level shift its version echoes)
            for length in range(REGRESSION_DATES[0], REGRESSION_DATES[1] + 1):
                z = pooled_z(row, length)
                if z is not None and z <= -RELEASE_Z and z < best.get(row["detail"], (0.0,))[0]:
                    best[row["detail"]] = (z, row, length)
        found = []
        for z, row, length in best.values():
            z, row = self.narrowed(z, row, length, tests)
            first = self.day(str(row["first"]))
            found += [
                Finding(
                    self.dates[d],
                    RATE_COLUMNS[row["k"] - 1],
                    RATE_DROP,
                    segment_of(row),
                    kind="release_regression",
                    z=z,
                )
                for d in range(first, min(first + length, len(self.dates)))
            ]
        return found

    def narrowed(self, z: float, row: dict[str, Any], length: int, tests: Rows) -> tuple[float, dict[str, Any]]:
        """A found release's fall, narrowed to the version's users of one country, channel or user type (the tests
        read them where `narrowed_releases`) whose pooled fall over the same dates is stronger than the whole
        version's, where the rest of the version shows none (beyond NARROWED_REST_Z) and would have shown the
        part's (its count stands NARROWED_SAME_Z above a fall of the part's share): a build that broke for them
        alone. Else the version's."""
        for part in tests:
            if (
                part["what"] != "release"
                or part["detail"] != row["detail"]
                or part["k"] != row["k"]
                or not narrowing(part)
                or str(part["first"]) != str(row["first"])
            ):
                continue
            own, rest = pooled_z(part, length), remainder(row, part)
            fall = sum(numbers(part["r"])[:length]) / max(sum(numbers(part["e"])[:length]), 1e-9)
            as_part = {**rest, "r": [r - fall * e for r, e in zip(rest["r"], rest["e"], strict=True)]}
            alone, unlike = pooled_z(rest, length), pooled_z(as_part, length)
            if (
                own is not None
                and own < z
                and alone is not None
                and alone > -NARROWED_REST_Z
                and unlike is not None
                and unlike >= NARROWED_SAME_Z
            ):
                z, row = own, part
        return z, row

    def experiments(self, tests: Rows) -> list[Finding]:
        """Per experiment, the step it does not target whose pooled fall in its arm over its dates is strongest,
        when beyond EXPERIMENT_Z: a row on each of its dates."""
        best: dict[str, tuple[float, dict[str, Any]]] = {}
        # An experiment by its arm and first date: the context names no experiment, its tests no arm's text.
        targets = {
            (arm_segment(row).normalised(), str(row["first"])): row["note"]
            for row in self.context
            if row["what"] == "experiment"
        }
        for row in tests:
            if row["what"] != "experiment":
                continue
            if RATE_COLUMNS[row["k"] - 1] == targets.get((segment_of(row), str(row["first"]))):
                continue  # the intended effect
            if sum(numbers(row["e"])) < MIN_EXPECTED:
                continue  # too few conversions expected to read a fall by
            z = pooled_z(row, len(numbers(row["r"])))
            if z is not None and z <= -EXPERIMENT_Z and z < best.get(row["detail"], (0.0,))[0]:
                best[row["detail"]] = (z, row)
        found = []
        for z, row in best.values():
            first = self.day(str(row["first"]))
            found += [
                Finding(
                    self.dates[first + int(d)],
                    RATE_COLUMNS[row["k"] - 1],
                    RATE_DROP,
                    segment_of(row),
                    kind="experiment_breakage",
                    z=z,
                )
                for d in numbers(row["offsets"])
            ]
        return found
