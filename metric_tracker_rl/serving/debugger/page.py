"""The /web debugger: a thin Gradio page over the same WebSocket reset/step API that agents use.

Every browser tab owns a `TabSession` (tabs.py) with its own connection to this server, so two tabs
never share an episode and a person sees exactly what an agent gets. Charts are read once per reset from a second,
short-lived session with the same settings, so drawing them costs the episode no steps. Ground truth appears only
when the server runs in debug mode (observations then carry `debug`); nothing on the page can switch that on.

The page is laid out part by part in layout.py; `DebuggerPage` holds the parts and handles their events.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import gradio as gr
import pandas as pd

from metric_tracker_rl import NAMED_TASK_ORDER, MetricTrackerRlAction
from metric_tracker_rl.catalog.published import COUNT_DIFFICULTIES
from metric_tracker_rl.catalog.tasks import TASKS
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.serving.debugger import charts, forms, layout
from metric_tracker_rl.serving.debugger import cuboid as cuboids
from metric_tracker_rl.serving.debugger.event_queue import bound_visitors
from metric_tracker_rl.serving.debugger.quiet_queue import quiet_when_idle
from metric_tracker_rl.serving.debugger.tabs import (
    CONNECTION_ERRORS,
    DebuggerError,
    OpenTabs,
    TabSession,
    browser_address,
    close_session,
    own_base_url,
)
from metric_tracker_rl.world.segments import SEGMENT_FIELDS

# Tabs whose page state Gradio keeps (its default, 10,000, holds a copy of the page's config per tab); a tab whose
# state was dropped still finds its episode in the page's OpenTabs.
STATE_SESSIONS = 512


def debugger_theme() -> dict[str, Any]:
    """The page's look in one place: keyword arguments for `gr.Blocks` (nothing here loads from outside)."""
    return {"analytics_enabled": False, "fill_width": True}


def build_debugger(name: str, title: str, self_url: str | None) -> tuple[gr.Blocks, Callable[[], None]]:
    """The page. Every event runs as soon as it arrives, within its visitor's bounds (event_queue): a tab's
    events take turns through its own `TabSession`, and a tab that is still busy is told so at once. With it, the
    function that closes every open tab (for a server that stops)."""
    with gr.Blocks(title=title, **debugger_theme()) as demo:
        page = DebuggerPage(name, self_url)
        page.wire(demo)
    demo.queue(default_concurrency_limit=None)
    demo.state_session_capacity = STATE_SESSIONS
    queue_bounded = bound_visitors(
        quiet_when_idle(demo), sweepers=[page.open_tabs.close_idle], close_tab=page.open_tabs.close
    )
    return queue_bounded, page.open_tabs.close_all


class CloseTab:
    """Gradio's callback when a tab's state is deleted. An object, not the function: the page's config shows the
    callback's repr, which for a function holds its heap address."""

    def __call__(self, session: TabSession | None) -> None:
        close_session(session)

    def __repr__(self) -> str:
        return "close_session"


class DebuggerPage:
    """The page's parts and the handlers of their events. Built inside the page's `gr.Blocks`; each handler
    receives the tab's `TabSession` (the page's state) and returns the updates of the components it changes."""

    def __init__(self, name: str, self_url: str | None) -> None:
        self.self_url = self_url
        self.open_tabs = OpenTabs()
        self.new_tab_lock = threading.Lock()
        self.state = gr.State(None, delete_callback=CloseTab())
        gr.Markdown(
            f"# {name} debugger\n"
            "Reset an episode, read the charts, run analysis tools, build and submit a report. "
            "This tab has its own episode on the server's WebSocket API."
        )
        self.form = layout.reset_form()
        with gr.Tabs():
            self.charts = layout.charts_tab()
            self.cuboid = layout.cuboid_tab()
            self.tools = layout.tools_tab()
            self.payload = layout.payload_tab()
            self.episode = layout.episode_tab()
        self.truth = layout.truth_panel()

    # --- the tab's session -------------------------------------------------------------------------

    def session_for(self, current: TabSession | None, request: gr.Request) -> TabSession:
        """The tab's session: the one its state holds, or the one an earlier event of the same tab created (two
        first events of a tab may arrive together, and Gradio may have dropped the tab's state), or a new one. It
        is kept among the page's open tabs, which may close it to make room (its next action then says so)."""
        with self.new_tab_lock:
            session_hash = request.session_hash  # a tab's events carry its session
            if current is None and session_hash is not None:
                current = self.open_tabs.get(session_hash)
            if current is None:
                current = TabSession(own_base_url(request, self.self_url), browser_address(request))
            if session_hash is not None:
                self.open_tabs.keep(session_hash, current)
            return current

    def close_tab(self, request: gr.Request) -> None:
        if request.session_hash is not None:
            close_session(self.open_tabs.pop(request.session_hash))

    def error_update(self, current: TabSession, exc: Exception) -> dict[Any, Any]:
        """The error on the first line of the status; the episode and budget lines stay."""
        return {
            self.state: current,
            self.form.status: forms.status_markdown(current.observation, current.config, str(exc)),
        }

    # --- reset --------------------------------------------------------------------------------------

    def do_reset(
        self,
        current: TabSession | None,
        task_id: str,
        seed_value: str,
        family_value: str,
        difficulty_value: str,
        density_value: str,
        count_value: str,
        column: str,
        request: gr.Request,
    ) -> dict[Any, Any]:
        current = self.session_for(current, request)
        try:
            kwargs = forms.reset_kwargs(task_id, seed_value, family_value, difficulty_value, density_value, count_value)
            observation = current.reset(**kwargs)
        except (ValueError, DebuggerError) as exc:
            return self.error_update(current, exc)
        if observation.status == "error":
            return {self.state: current, self.form.status: forms.status_markdown(observation, current.config)}
        return {
            self.state: current,
            self.form.status: forms.status_markdown(observation, current.config),
            **self.reset_charts(current, observation, column),
            **self.reset_tools(current),
            **self.reset_payload(observation),
            **self.reset_episode(observation),
            **self.cuboid_controls(current, observation),
        }

    def reset_outputs(self) -> list[Any]:
        """Every component a reset updates, in the order `wire` hands them to gradio."""
        charts_tab, cuboid, tools, payload, truth = self.charts, self.cuboid, self.tools, self.payload, self.truth
        return [
            self.state,
            self.form.status,
            charts_tab.counts,
            charts_tab.rates,
            charts_tab.heatmap,
            charts_tab.funnel,
            charts_tab.date,
            tools.name,
            tools.help,
            tools.args,
            tools.table,
            tools.json,
            payload.generator_name,
            payload.generator_args,
            payload.generate_button,
            payload.payload,
            payload.preview_table,
            payload.breakdown,
            payload.issues,
            payload.comparison,
            payload.submit_button,
            payload.confirm_button,
            self.episode.instruction,
            self.episode.definitions,
            truth.panel,
            truth.expected,
            truth.injections,
            cuboid.note,
            cuboid.chart,
            cuboid.context_rows,
            cuboid.context_table,
            cuboid.context_panel,
            *cuboid.fields,
        ]

    def reset_charts(self, current: TabSession, observation: MetricTrackerRlObservation, column: str) -> dict[Any, Any]:
        data = current.charts
        if data is None:  # a reset reads the charts or raises, but in held-out mode
            note = f"<p>{layout.HELD_OUT_NOTE}</p>"
            return {
                self.charts.counts: note,
                self.charts.rates: "",
                self.charts.heatmap: "",
                self.charts.funnel: "",
                self.charts.date: gr.update(choices=[], value=None),
            }
        marks = charts.marks_for(data.annotations, observation.debug)
        return {
            self.charts.counts: charts.daily_counts_svg(data, marks, current.resets),
            self.charts.rates: charts.conversion_svg(data, marks, current.resets),
            self.charts.date: gr.update(choices=data.dates, value=data.dates[-1]),
            **self.chart_updates(current, data.dates[-1], column),
        }

    def reset_tools(self, current: TabSession) -> dict[Any, Any]:
        """The tool and generator pickers, each on its first method (the tier's tools: the warehouse has its SQL tool
        and metrics layer, and no generator), and an empty result; a tier without generators shows no generator
        picker nor its button."""
        tools = [name for name, m in current.methods.items() if m["kind"] == "analysis"]
        generators = [name for name, m in current.methods.items() if m["kind"] == "generator"]
        first = generators[0] if generators else None
        return {
            self.tools.name: gr.update(choices=tools, value=tools[0]),
            self.tools.help: forms.describe_method(current.methods[tools[0]]),
            self.tools.args: json.dumps(forms.default_arguments(current.methods[tools[0]]), indent=2),
            self.tools.table: forms.EMPTY_RESULT,
            self.tools.json: None,
            self.payload.generator_name: gr.update(choices=generators, value=first, visible=bool(generators)),
            self.payload.generator_args: gr.update(
                value=json.dumps(forms.default_arguments(current.methods[first]), indent=2) if first else "{}",
                visible=bool(generators),
            ),
            self.payload.generate_button: gr.update(visible=bool(generators)),
        }

    def reset_payload(self, observation: MetricTrackerRlObservation) -> dict[Any, Any]:
        payload = self.payload
        return {
            payload.payload: forms.empty_payload(),
            payload.preview_table: forms.issues_table([]),
            payload.breakdown: forms.EMPTY_BREAKDOWN,
            payload.issues: forms.issues_table([]),
            payload.comparison: forms.comparison_table(None),
            payload.submit_button: forms.submit_label(observation),
            payload.confirm_button: gr.update(visible=False),
        }

    def reset_episode(self, observation: MetricTrackerRlObservation) -> dict[Any, Any]:
        """The instruction and definitions, and the ground truth where the server is in debug mode."""
        debug = observation.debug
        return {
            self.episode.instruction: observation.instruction,
            self.episode.definitions: pd.DataFrame([d.model_dump() for d in observation.conversion_metric_definitions]),
            self.truth.panel: gr.update(visible=debug is not None),
            self.truth.expected: charts.expected_rows_table(debug),
            self.truth.injections: None if debug is None else {k: v for k, v in debug.items() if k != "expected_rows"},
        }

    def select_difficulty(self, difficulty_value: str) -> dict[Any, Any]:
        """Choosing a difficulty selects its first named task (or none: the difficulty's own defaults)."""
        named = [task_id for task_id in NAMED_TASK_ORDER if TASKS[task_id].difficulty == difficulty_value]
        return {self.form.task: named[0] if named else forms.DEFAULT_CHOICE}

    # --- charts and cuboids ---------------------------------------------------------------------------

    def chart_updates(self, current: TabSession, date: str | None, column: str) -> dict[Any, Any]:
        data = current.charts
        if data is None:
            return {}
        marks = charts.marks_for(data.annotations, current.observation.debug if current.observation else None)
        date = date if date in data.dates else data.dates[-1]
        return {
            self.charts.heatmap: charts.hourly_heatmap_svg(data, column, marks, current.resets),
            self.charts.funnel: charts.funnel_svg(data, date, marks, current.resets),
        }

    def do_charts(self, current: TabSession | None, date: str | None, column: str) -> dict[Any, Any]:
        return self.chart_updates(current, date, column) if current is not None else {}

    def cuboid_controls(self, current: TabSession, observation: MetricTrackerRlObservation) -> dict[Any, Any]:
        """The cuboid tab's controls for the new episode: a dropdown per dimension it has, its context
        tables, and an empty chart."""
        cuboid = self.cuboid
        tables = cuboids.context_tables(observation.segments)
        updates: dict[Any, Any] = {
            cuboid.note: self.cuboid_note(current),
            cuboid.chart: "",
            cuboid.context_rows: forms.EMPTY_RESULT,
            cuboid.context_panel: gr.update(visible=bool(tables)),
            cuboid.context_table: gr.update(choices=tables, value=tables[0] if tables else None),
        }
        for field, dropdown in zip(SEGMENT_FIELDS, cuboid.fields, strict=True):
            values = current.dimensions.get(field)
            updates[dropdown] = gr.update(
                choices=[cuboids.ALL_VALUES, *(values or [])], value=cuboids.ALL_VALUES, visible=values is not None
            )
        return updates

    @staticmethod
    def cuboid_note(current: TabSession | None) -> str:
        """What the cuboid page says about the tab's episode: how to chart it, or why it cannot be charted here."""
        if current is None:
            return layout.CUBOID_NOTE_FLAT
        if current.held_out:
            return layout.HELD_OUT_NOTE
        if current.config.get("difficulty") not in COUNT_DIFFICULTIES:  # raw events: no count tables to chart
            return layout.cuboid_note_raw(list(current.config.get("dimensions") or []))
        return layout.CUBOID_NOTE if current.dimensions else layout.CUBOID_NOTE_FLAT

    def chart_cuboid(self, current: TabSession | None, metric: str, *choices: str) -> dict[Any, Any]:
        if current is None or not current.dimensions:
            return {self.cuboid.note: self.cuboid_note(current)}
        cuboid = cuboids.cuboid_of(dict(zip(SEGMENT_FIELDS, choices, strict=True)))
        try:
            rows = current.read_query(cuboids.cuboid_query(cuboid))
            dates, observed, baseline = cuboids.cuboid_series(rows, metric)
        except (*CONNECTION_ERRORS, RuntimeError, ValueError) as exc:
            return {self.cuboid.note: f"The cuboid could not be read: {exc}"}
        data = current.charts
        marks = charts.marks_for(
            data.annotations if data else [], current.observation.debug if current.observation else None
        )
        return {
            self.cuboid.note: layout.CUBOID_NOTE,
            self.cuboid.chart: charts.baseline_chart_svg(
                dates, observed, baseline, metric, cuboids.cuboid_title(cuboid, metric), marks, current.resets
            ),
        }

    def read_context(self, current: TabSession | None, table: str | None) -> dict[Any, Any]:
        if current is None or current.observation is None:
            return {}
        try:
            sql = cuboids.context_query(table or "", cuboids.context_tables(current.observation.segments))
            return {self.cuboid.context_rows: forms.result_table({"rows": current.read_query(sql)})}
        except (*CONNECTION_ERRORS, RuntimeError, ValueError) as exc:
            return {self.cuboid.note: f"The context table could not be read: {exc}"}

    # --- steps: tools, generators, preview and submission -------------------------------------------

    def select_method(self, current: TabSession | None, name: str | None) -> tuple[str, str]:
        method = (current.methods if current else {}).get(name or "")
        if method is None:
            return "", "{}"
        return forms.describe_method(method), json.dumps(forms.default_arguments(method), indent=2)

    def select_generator(self, current: TabSession | None, name: str | None) -> str:
        return self.select_method(current, name)[1]

    def stepped(
        self,
        current: TabSession | None,
        request: gr.Request,
        build_action: Callable[[], MetricTrackerRlAction],
        view: Callable[[MetricTrackerRlObservation], dict[Any, Any]],
    ) -> dict[Any, Any]:
        """One step of the tab's episode: the status line plus the outputs `view` derives from it."""
        current = self.session_for(current, request)
        try:
            observation = current.step(build_action())
        except (ValueError, DebuggerError) as exc:
            return self.error_update(current, exc)
        return {
            self.state: current,
            self.form.status: forms.status_markdown(observation, current.config),
            self.payload.submit_button: forms.submit_label(observation),
            **view(observation),
        }

    def run_tool(self, current: TabSession | None, name: str, args_text: str, request: gr.Request) -> dict[Any, Any]:
        return self.stepped(
            current,
            request,
            _tool_call(name, args_text),
            lambda o: {self.tools.table: forms.result_table(o.analysis_result), self.tools.json: o.analysis_result},
        )

    def generate(
        self, current: TabSession | None, name: str, args_text: str, rows: pd.DataFrame, request: gr.Request
    ) -> dict[Any, Any]:
        return self.stepped(
            current,
            request,
            _tool_call(name, args_text),
            lambda o: {self.payload.payload: forms.merge_rows(rows, (o.analysis_result or {}).get("rows", []))},
        )

    def preview(self, current: TabSession | None, rows: pd.DataFrame, request: gr.Request) -> dict[Any, Any]:
        """Preview issues replace the last graded breakdown, which described other rows."""
        payload = self.payload
        return self.stepped(
            current,
            request,
            lambda: MetricTrackerRlAction(
                analysis_method="preview_submission", analysis_args={"rows": forms.rows_from_frame(rows)}
            ),
            lambda o: {
                payload.preview_table: forms.issues_table((o.analysis_result or {}).get("issues", [])),
                payload.breakdown: forms.EMPTY_BREAKDOWN,
                payload.issues: forms.issues_table([]),
            },
        )

    def grade(self, current: TabSession | None, rows: pd.DataFrame, request: gr.Request) -> dict[Any, Any]:
        payload = self.payload
        return self.stepped(
            current,
            request,
            lambda: MetricTrackerRlAction(classifications=forms.rows_from_frame(rows)),
            lambda o: {
                payload.breakdown: forms.breakdown_table(o),
                payload.issues: forms.issues_table(o.submission_issues),
                payload.comparison: forms.comparison_table(o),
                payload.preview_table: forms.issues_table([]),
                payload.confirm_button: gr.update(visible=False),
            },
        )

    def submit(self, current: TabSession | None, rows: pd.DataFrame, request: gr.Request) -> dict[Any, Any]:
        """An empty payload is graded only after a second, explicit press."""
        if forms.rows_from_frame(rows) or current is None or current.observation is None:
            return self.grade(current, rows, request)
        return {
            self.state: current,
            self.form.status: forms.status_markdown(
                current.observation, current.config, forms.EMPTY_REPORT_WARNING, heading="confirm"
            ),
            self.payload.confirm_button: gr.update(visible=True),
        }

    # --- events ---------------------------------------------------------------------------------------

    def wire(self, demo: gr.Blocks) -> None:
        """Connect every control of the page to its handler."""
        state, form, chart, cuboid, tools, payload = (
            self.state,
            self.form,
            self.charts,
            self.cuboid,
            self.tools,
            self.payload,
        )
        reset_inputs = [
            state,
            form.task,
            form.seed,
            form.family,
            form.difficulty,
            form.density,
            form.count,
            chart.heat_column,
        ]
        reset_outputs = self.reset_outputs()
        graded_outputs = [
            state,
            form.status,
            payload.submit_button,
            payload.breakdown,
            payload.issues,
            payload.comparison,
            payload.preview_table,
            payload.confirm_button,
        ]
        demo.load(self.do_reset, reset_inputs, reset_outputs)
        form.difficulty.input(self.select_difficulty, [form.difficulty], [form.task])
        cuboid.button.click(self.chart_cuboid, [state, cuboid.metric, *cuboid.fields], [cuboid.note, cuboid.chart])
        cuboid.context_button.click(
            self.read_context, [state, cuboid.context_table], [cuboid.note, cuboid.context_rows]
        )
        form.button.click(self.do_reset, reset_inputs, reset_outputs)
        chart.date.input(self.do_charts, [state, chart.date, chart.heat_column], [chart.heatmap, chart.funnel])
        chart.heat_column.input(self.do_charts, [state, chart.date, chart.heat_column], [chart.heatmap, chart.funnel])
        tools.name.input(self.select_method, [state, tools.name], [tools.help, tools.args])
        payload.generator_name.input(self.select_generator, [state, payload.generator_name], [payload.generator_args])
        tools.run_button.click(
            self.run_tool,
            [state, tools.name, tools.args],
            [state, form.status, payload.submit_button, tools.table, tools.json],
        )
        payload.generate_button.click(
            self.generate,
            [state, payload.generator_name, payload.generator_args, payload.payload],
            [state, form.status, payload.submit_button, payload.payload],
        )
        payload.clear_button.click(forms.empty_payload, None, [payload.payload])
        payload.preview_button.click(
            self.preview,
            [state, payload.payload],
            [state, form.status, payload.submit_button, payload.preview_table, payload.breakdown, payload.issues],
        )
        payload.submit_button.click(self.submit, [state, payload.payload], graded_outputs)
        payload.confirm_button.click(self.grade, [state, payload.payload], graded_outputs)
        demo.unload(self.close_tab)


def _tool_call(name: str, args_text: str) -> Callable[[], MetricTrackerRlAction]:
    return lambda: MetricTrackerRlAction(analysis_method=name, analysis_args=forms.parse_arguments(args_text))
