"""Agents that bound the benchmark from below: random rows and mass submissions (the reference README's
one-generator-per-task baseline is a package agent, metric_tracker_rl.agents.readme_baseline). Like every agent they
read only observations and send public actions."""

from __future__ import annotations

import numpy as np

from lab.agents.registry import register_lab_agent
from metric_tracker_rl.agents.base import Agent
from metric_tracker_rl.agents.reading import episode_dates
from metric_tracker_rl.catalog.published import (
    ANOMALY_TYPES,
    ENTITY_NAMES,
    FAMILY_ENTITY_TYPE,
    FAMILY_GENERATORS,
    SEVERITIES,
)
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction, PayloadGeneratorMethod
from metric_tracker_rl.view.observation import SeenObservation

# Generators that take a robust-z threshold: the median scan and every family's own generator
# (get_rows_with_abs_diff_from_median_gt takes metric units instead).
Z_GENERATORS: tuple[str, ...] = ("get_median_filter_rows", *FAMILY_GENERATORS)


def submitted_once(observation: SeenObservation) -> bool:
    return observation.status == "graded"


class RandomAgent(Agent):
    """Submits a few random but valid rows on the brief's dates (seeded from the episode config)."""

    name = "random"

    def begin(self, observation: SeenObservation) -> None:
        self.rng = np.random.default_rng(int(observation.config.get("seed", 0)))
        self.dates = episode_dates(observation.brief)

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if submitted_once(observation) or observation.done:
            return None
        rows: dict[tuple[str, str, str], MetricSubmissionRow] = {}
        for _ in range(int(self.rng.integers(1, 7))):  # distinct keys: a repeated key would be refused
            row = self._row(self.dates)
            rows.setdefault((row.date, row.entity_type, row.entity_name), row)
        return MetricTrackerRlAction(classifications=list(rows.values()))

    def _row(self, dates: list[str]) -> MetricSubmissionRow:
        family = str(self.rng.choice(ANOMALY_TYPES))
        entity_type = FAMILY_ENTITY_TYPE[family]
        baseline = float(self.rng.uniform(0.0, 1000.0))
        observed = float(self.rng.uniform(0.0, 1000.0))
        return MetricSubmissionRow(
            date=str(self.rng.choice(dates)),
            entity_type=entity_type,
            entity_name=str(self.rng.choice(ENTITY_NAMES[entity_type])),
            anomaly_type=family,
            detection_method="show_raw_data",
            baseline_value=baseline,
            observed_value=observed,
            delta_value=observed - baseline,
            severity=str(self.rng.choice(SEVERITIES)),
        )


class MassGeneratorsAgent(Agent):
    """Submits every generator at a low threshold; if the merged rows exceed the submission cap, raises the
    threshold until they fit."""

    name = "mass_generators"
    thresholds: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 5.0)

    def begin(self, observation: SeenObservation) -> None:
        self.attempt = 0

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if submitted_once(observation) or self.attempt >= len(self.thresholds):
            return None
        threshold = self.thresholds[self.attempt]
        self.attempt += 1
        return MetricTrackerRlAction(
            payload_generators=[
                PayloadGeneratorMethod(method_name=name, threshold_multiplier=threshold) for name in Z_GENERATORS
            ]
        )


class MassGridAgent(Agent):
    """Reports every date x entity key (with the entity type's family and zero values), spread over as many
    submissions as the budget allows, each capped in rows."""

    name = "mass_grid"
    rows_per_submission = 200

    def begin(self, observation: SeenObservation) -> None:
        self.rows = self._grid(episode_dates(observation.brief))

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if not self.rows or observation.submissions_remaining <= 0:
            return None
        chunk, self.rows = self.rows[: self.rows_per_submission], self.rows[self.rows_per_submission :]
        return MetricTrackerRlAction(classifications=chunk)

    @staticmethod
    def _grid(dates: list[str]) -> list[MetricSubmissionRow]:
        family_of = {entity_type: family for family, entity_type in reversed(list(FAMILY_ENTITY_TYPE.items()))}
        return [
            MetricSubmissionRow(
                date=date,
                entity_type=entity_type,
                entity_name=name,
                anomaly_type=family_of[entity_type],
                detection_method="show_raw_data",
                baseline_value=0.0,
                observed_value=0.0,
                delta_value=0.0,
                severity="low",
            )
            for date in dates
            for entity_type, names in ENTITY_NAMES.items()
            for name in names
        ]


register_lab_agent(RandomAgent.name, RandomAgent)
register_lab_agent(MassGeneratorsAgent.name, MassGeneratorsAgent)
register_lab_agent(MassGridAgent.name, MassGridAgent)
