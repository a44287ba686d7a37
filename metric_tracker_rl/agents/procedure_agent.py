"""An agent that plays a procedure of SQL statements at a raw-event tier through the environment's tools: the
metrics layer read once, then each statement through the query tool (every page of its result sent back to the
procedure together), then one report of the findings it returns."""

from __future__ import annotations

from collections.abc import Generator

from metric_tracker_rl.agents.base import Agent
from metric_tracker_rl.agents.expert_core.queries import query_action
from metric_tracker_rl.agents.warehouse_findings import Finding, Rows, Statement, report_row, sent_text
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation


class ProcedureAgent(Agent):
    """Plays the procedure `plan(observation)` makes: a generator that yields (name, sql), is sent each statement's
    rows and returns the findings to report."""

    def plan(self, observation: SeenObservation) -> Generator[Statement, Rows, list[Finding]]:
        raise NotImplementedError

    def begin(self, observation: SeenObservation) -> None:
        self.procedure = self.plan(observation)
        self.statement: Statement | None = None
        self.rows: Rows = []
        self.read_layer = False
        self.submitted = False

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if not self.read_layer:
            self.read_layer = True
            return MetricTrackerRlAction(analysis_method="metrics_layer", analysis_args={})
        if self.submitted:
            return None
        result = observation.analysis_result or {}
        if self.statement is None:
            self.statement = next(self.procedure)
        else:
            self.rows += result.get("rows", [])
            if result.get("next_offset") is not None:
                return query_action(sent_text(self.statement[1]), int(result["next_offset"]))
            try:
                self.statement = self.procedure.send(self.rows)
            except StopIteration as done:
                self.submitted = True
                return MetricTrackerRlAction(classifications=[report_row(f) for f in done.value])
        self.rows = []
        return query_action(sent_text(self.statement[1]))
