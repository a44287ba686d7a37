"""The /web debugger: a thin Gradio layout over the same WebSocket reset/step API that agents use.

Every browser tab owns a `TabSession` (kept in `gr.State`) with its own `MetricTrackerRlEnv` connection to
this server, so two tabs never share an episode and a person sees exactly what an agent gets. Charts are
read once per reset from a second, short-lived session with the same settings, so drawing them costs the
episode no steps. Ground truth appears only when the server runs in debug mode (observations then carry
`debug`); nothing on the page can switch that on.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import weakref
from collections.abc import Callable
from typing import Any

import gradio as gr
import pandas as pd
from websockets.exceptions import WebSocketException

from metric_tracker_rl import DEFAULT_TASK_ORDER, NAMED_TASK_ORDER, MetricTrackerRlAction, MetricTrackerRlEnv
from metric_tracker_rl.analysis_tools.registry import MAX_PAGE_ROWS
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.serving import debugger_charts as charts
from metric_tracker_rl.serving import debugger_cuboid as cuboids
from metric_tracker_rl.serving import debugger_forms as forms
from metric_tracker_rl.serving import images
from metric_tracker_rl.serving.quiet_queue import quiet_when_idle
from metric_tracker_rl.spec.published import COUNT_COLUMNS, DIFFICULTIES, SCENARIO_FAMILIES
from metric_tracker_rl.spec.tasks import TASKS
from metric_tracker_rl.world.segments import SEGMENT_FIELDS

CHART_SESSION_STEPS = 500  # the chart session reads every page and every day's hours (the budget's maximum)
QUERY_PAGE_ROWS = MAX_PAGE_ROWS  # a read-only query's page (the SQL tool's largest)


def own_base_url(request: gr.Request, self_url: str | None) -> str:
    """The address of this server as the tab's own request reached it: the local socket the request arrived
    on (not its Host header, which names a proxy on a Space), so however the server was started and on
    whatever port, the debugger finds its API. `self_url` (METRIC_TRACKER_SELF_URL) overrides it."""
    if self_url:
        return self_url
    if request.request is None:
        raise DebuggerError("the page's request did not reach the server")
    host, port = request.request.scope["server"]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def browser_address(request: gr.Request) -> str | None:
    """The person's address, forwarded with the tab's sessions so the per-client session cap counts them."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or None


class ForwardingClient(MetricTrackerRlEnv):
    """The tab's WebSocket client: names the browser in X-Forwarded-For. The server trusts the header only
    from an address named in FORWARDED_ALLOW_IPS (uvicorn's setting; loopback by default), i.e. when this
    client connects from the server's own machine."""

    def __init__(self, base_url: str, forwarded_for: str | None, message_timeout_s: float) -> None:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
        super().__init__(base_url=base_url, message_timeout_s=message_timeout_s, headers=headers)
        self.forwarded_for = forwarded_for


class DebuggerError(RuntimeError):
    """Something the page reports instead of raising: a server error reply or a lost session."""


CONNECTION_ERRORS = (ConnectionError, OSError, TimeoutError, WebSocketException)


class TabSession:
    """One browser tab's episode: a WebSocket client plus what the page derived from its observations."""

    def __init__(self, base_url: str, forwarded_for: str | None) -> None:
        self.base_url = base_url
        self.forwarded_for = forwarded_for
        self._client: Any = None
        self._lock = threading.Lock()
        self.methods: dict[str, dict[str, Any]] = {}
        self.observation: MetricTrackerRlObservation | None = None
        self.config: dict[str, Any] = {}  # the episode's visible config; only the reset observation carries it
        self.charts: charts.ChartData | None = None
        self.read_settings: dict[str, Any] = {}  # the reset settings a read-only session of the same episode takes
        self.dimensions: dict[str, list[str]] = {}  # a segmented episode's dimension values (the cuboid controls)
        self.resets = 0  # successful resets of this tab; the charts carry it so a redraw can be told apart

    def _connected(self) -> Any:
        if self._client is None:
            self._client = ForwardingClient(self.base_url, self.forwarded_for, message_timeout_s=60.0).sync()
            self._client.connect()
        return self._client

    def _call(self, method: str, *args: Any, **kwargs: Any) -> MetricTrackerRlObservation:
        with self._lock:
            try:
                result = getattr(self._connected(), method)(*args, **kwargs)
            except CONNECTION_ERRORS as exc:
                # The server restarted or reaped the idle session: its episode is gone.
                self._drop_client()
                self.observation = None
                raise DebuggerError(f"the session with the server ended ({exc}); press Reset to start again") \
                    from exc
            except RuntimeError as exc:  # an error reply; the session stays open
                raise DebuggerError(str(exc)) from exc
        self.observation = result.observation
        return result.observation

    def reset(self, **kwargs: Any) -> MetricTrackerRlObservation:
        observation = self._call("reset", **kwargs)
        if observation.status != "error":
            self.config = observation.config
            self.methods = {m.name: m.model_dump() for m in observation.available_methods}
            # The same episode again: the seed the server chose, if the form left it out.
            self.read_settings = {**kwargs, "seed": observation.config.get("seed", kwargs.get("seed"))}
            try:
                self.charts = fetch_chart_data(self.base_url, self.forwarded_for, self.read_settings)
                fields = cuboids.episode_fields(observation.segments)
                self.dimensions = cuboids.dimension_values(
                    self.read_query(cuboids.dimension_values_query(fields)), fields) if fields else {}
            except (*CONNECTION_ERRORS, RuntimeError) as exc:
                raise DebuggerError(f"the episode is ready but its charts could not be read: {exc}") from exc
            self.resets += 1
        return observation

    def read_query(self, sql: str) -> list[dict[str, Any]]:
        """Every row of a SQL query on the episode, read in a read-only session of it (no step of the tab's)."""
        with ForwardingClient(self.base_url, self.forwarded_for, message_timeout_s=60.0).sync() as env:
            env.reset(**{**self.read_settings, "max_steps": CHART_SESSION_STEPS})
            rows: list[dict[str, Any]] = []
            offset: int | None = 0
            while offset is not None:
                observation = env.step(MetricTrackerRlAction(analysis_method="query", analysis_args={
                    "sql": sql, "limit": QUERY_PAGE_ROWS, "offset": offset})).observation
                if observation.status != "ok" or observation.analysis_result is None:
                    raise RuntimeError(f"query failed: {observation.message}")
                rows += observation.analysis_result["rows"]
                offset = observation.analysis_result.get("next_offset")
            return rows

    def step(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        if self.observation is None:
            raise DebuggerError("no episode in this tab; press Reset")
        return self._call("step", action)

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # the connection may already be gone; nothing left to release
                client.close()

    def close(self) -> None:
        with self._lock:
            self._drop_client()


def fetch_chart_data(base_url: str, forwarded_for: str | None, reset_kwargs: dict[str, Any]) -> charts.ChartData:
    """Read the chart data with public tools in a separate session with the same settings."""
    with ForwardingClient(base_url, forwarded_for, message_timeout_s=60.0).sync() as env:
        env.reset(**{**reset_kwargs, "max_steps": CHART_SESSION_STEPS})  # a day's hours each: 56 days at frontier
        return charts.read_chart_data(lambda action: env.step(action).observation)


def _close(session: TabSession | None) -> None:
    if session is not None:
        session.close()


CHART_CSS = """
.mt-chart { background: #ffffff; color: #24292f; border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 12px; }
.mt-chart-title { font-weight: 600; font-size: 15px; margin-bottom: 6px; }
.mt-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 4px 14px; }
.mt-chart svg { width: 100%; height: auto; display: block; font-family: system-ui, sans-serif; }
.mt-legend { font-size: 12px; color: #57606a; margin-top: 4px; }
"""


def debugger_theme() -> dict[str, Any]:
    """The page's look in one place: keyword arguments for `gr.Blocks` (nothing here loads from outside)."""
    return {"analytics_enabled": False, "fill_width": True}


def add_favicon(app: Any) -> None:
    """Serve the tab icon at /favicon.ico (browsers ask for it on every site) instead of a 404."""
    from fastapi.responses import Response

    icon = images.favicon_ico()

    async def favicon() -> Response:
        return Response(icon, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})

    app.add_api_route("/favicon.ico", favicon, include_in_schema=False)


CUBOID_NOTE = ("Choose a value of any dimensions (the rest stay at all values) and a metric: the chart shows that "
               "cuboid's daily value (green) against its published baseline, the median of the same weekday in the "
               "other weeks (grey, dashed). It is read in a separate read-only session and costs no steps.")
CUBOID_NOTE_FLAT = "This episode has one aggregate funnel: no dimensions to choose (reset a segmented difficulty)."


def _chart_box(elem_id: str) -> gr.HTML:
    return gr.HTML("", elem_id=elem_id, css_template=CHART_CSS, js_on_load=None)


def debugger_builder(self_url: str | None) -> Callable[..., gr.Blocks]:
    """OpenEnv's gradio_builder hook for a server whose API the debugger reaches at `self_url` (None: as each
    request arrived)."""
    return functools.partial(build_debugger, self_url=self_url)


def build_debugger(web_manager: Any, action_fields: Any, metadata: Any, is_chat_env: bool, title: str,
                   quick_start_md: str, *, self_url: str | None) -> gr.Blocks:
    """OpenEnv's gradio_builder hook. The shared `web_manager` environment is deliberately unused: every tab
    gets its own WebSocket session instead."""
    del web_manager, action_fields, is_chat_env, quick_start_md  # the hook's other inputs are not needed here
    open_sessions: weakref.WeakValueDictionary[str, TabSession] = weakref.WeakValueDictionary()

    with gr.Blocks(title=title, **debugger_theme()) as demo:
        session_state = gr.State(None, delete_callback=_close)
        gr.Markdown(f"# {getattr(metadata, 'name', 'metric_tracker_rl')} debugger\n"
                    "Reset an episode, read the charts, run analysis tools, build and submit a report. "
                    "This tab has its own episode on the server's WebSocket API.")
        with gr.Row(equal_height=True):
            task = gr.Dropdown([forms.DEFAULT_CHOICE, *NAMED_TASK_ORDER], value=DEFAULT_TASK_ORDER[0], label="Task",
                               elem_id="reset-task", scale=2, min_width=220)
            seed = gr.Textbox(label="seed", placeholder="task default", elem_id="reset-seed")
            family = gr.Dropdown([forms.DEFAULT_CHOICE, *SCENARIO_FAMILIES], value=forms.DEFAULT_CHOICE,
                                 label="scenario_family")
            difficulty = gr.Dropdown([forms.DEFAULT_CHOICE, *DIFFICULTIES], value=forms.DEFAULT_CHOICE,
                                     label="difficulty", elem_id="reset-difficulty")
            density = gr.Textbox(label="anomaly_density", placeholder="task default", elem_id="reset-density")
            count = gr.Textbox(label="anomaly_count", placeholder="task default", elem_id="reset-count")
            reset_button = gr.Button("Reset", variant="primary", elem_id="reset-button")
        status = gr.Markdown("Resetting…", elem_id="status")

        with gr.Tabs():
            with gr.Tab("Charts"):
                with gr.Row():
                    chart_date = gr.Dropdown([], label="Date for the funnel chart", elem_id="chart-date")
                    heat_column = gr.Dropdown(list(COUNT_COLUMNS), value=COUNT_COLUMNS[0],
                                              label="Event for the hourly heatmap", elem_id="heat-column")
                counts_chart = _chart_box("chart-counts")
                rates_chart = _chart_box("chart-rates")
                with gr.Row():
                    heatmap_chart = _chart_box("chart-heatmap")
                    funnel_chart = _chart_box("chart-funnel")
                gr.Markdown("Grey bands: dates with calendar notes (get_annotations), labelled with their kind; "
                            "hover a band or a point for details. Charts come from a separate read-only session "
                            "with the same settings and cost this episode no steps.")
            with gr.Tab("Cuboid", elem_id="cuboid-tab"):
                cuboid_note = gr.Markdown(CUBOID_NOTE_FLAT, elem_id="cuboid-note")
                with gr.Row():
                    cuboid_fields = [gr.Dropdown([cuboids.ALL_VALUES], value=cuboids.ALL_VALUES, label=field,
                                                 elem_id=f"cuboid-{field}", visible=False)
                                     for field in SEGMENT_FIELDS]
                    cuboid_metric = gr.Dropdown(list(cuboids.CUBOID_METRICS), value=cuboids.CUBOID_METRICS[0],
                                                label="metric", elem_id="cuboid-metric")
                cuboid_button = gr.Button("Chart the cuboid", elem_id="cuboid-chart-button")
                cuboid_chart = _chart_box("chart-cuboid")
                with gr.Column(visible=False, elem_id="context-panel") as context_panel:
                    with gr.Row():
                        context_table = gr.Dropdown([], label="Context table", elem_id="context-table")
                        context_button = gr.Button("Read the table", elem_id="context-read")
                    context_rows = gr.Dataframe(forms.EMPTY_RESULT, label="Context rows (the first 200)",
                                                elem_id="context-rows", wrap=True, max_height=800)
            with gr.Tab("Analysis tools"):
                with gr.Row():
                    tool_name = gr.Dropdown([], label="Tool", elem_id="tool-name", scale=1)
                    tool_args = gr.Code("{}", language="json", label="Arguments (JSON)", elem_id="tool-args",
                                        scale=2)
                tool_help = gr.Markdown(elem_id="tool-help")
                run_button = gr.Button("Run tool", variant="primary", elem_id="run-tool")
                tool_table = gr.Dataframe(forms.EMPTY_RESULT, label="Result table (numbers rounded; the raw JSON "
                                          "below keeps full precision)", elem_id="tool-table", wrap=True,
                                          max_height=1200)
                with gr.Accordion("Raw result (JSON)", open=False):
                    tool_json = gr.JSON(label="Raw result", elem_id="tool-json")
            with gr.Tab("Payload"):
                with gr.Row():
                    generator_name = gr.Dropdown([], label="Generator", elem_id="generator-name", scale=1)
                    generator_args = gr.Code("{}", language="json", label="Generator arguments (JSON)",
                                             elem_id="generator-args", scale=2)
                generate_button = gr.Button("Add generated rows", elem_id="generate-rows")
                payload = gr.Dataframe(forms.empty_payload(), label="Payload rows (editable; date, entity_type and "
                                       "entity_name stay pinned if the table scrolls)", interactive=True,
                                       elem_id="payload", row_count=1, pinned_columns=3, wrap=True)
                with gr.Row():
                    clear_button = gr.Button("Clear rows")
                    preview_button = gr.Button("Preview (uses a step, no submission)", elem_id="preview")
                    submit_button = gr.Button(forms.submit_label(None), variant="primary", elem_id="submit")
                confirm_button = gr.Button("Submit the empty report", variant="stop", visible=False,
                                           elem_id="confirm-empty")
                preview_table = gr.Dataframe(forms.issues_table([]), label="Preview issues", elem_id="preview-issues")
                breakdown = gr.Dataframe(forms.EMPTY_BREAKDOWN, label="Reward breakdown", elem_id="reward-breakdown")
                issues = gr.Dataframe(forms.issues_table([]), label="Submission issues", elem_id="submission-issues")
                comparison = gr.Dataframe(forms.comparison_table(None), label="Graded comparison (once the episode "
                                          "is over, open mode only): each row's verdict, then the missed incidents",
                                          elem_id="graded-comparison", wrap=True)
            with gr.Tab("Episode"):
                instruction = gr.Markdown(elem_id="instruction")
                definitions = gr.Dataframe(forms.EMPTY_DEFINITIONS, label="Conversion metric definitions",
                                           elem_id="definitions")
        with gr.Accordion("Ground truth (server debug mode)", open=True, visible=False,
                          elem_id="debug-panel") as debug_panel:
            expected_table = gr.Dataframe(charts.expected_rows_table(None), label="Expected rows",
                                          elem_id="debug-expected", wrap=True, pinned_columns=3)
            debug_json = gr.JSON(label="Injections and distractors")

        # --- events -------------------------------------------------------------------------------------

        def session_for(current: TabSession | None, request: gr.Request) -> TabSession:
            if current is None:
                current = TabSession(own_base_url(request, self_url), browser_address(request))
                if request.session_hash is not None:  # a tab's events carry its session
                    open_sessions[request.session_hash] = current
            return current

        def error_update(current: TabSession, exc: Exception) -> dict[Any, Any]:
            """The error on the first line of the status; the episode and budget lines stay."""
            return {session_state: current,
                    status: forms.status_markdown(current.observation, current.config, str(exc))}

        def chart_updates(current: TabSession, date: str | None, column: str) -> dict[Any, Any]:
            data = current.charts
            if data is None:
                return {}
            marks = charts.marks_for(data.annotations, current.observation.debug if current.observation else None)
            date = date if date in data.dates else data.dates[-1]
            return {heatmap_chart: charts.hourly_heatmap_svg(data, column, marks, current.resets),
                    funnel_chart: charts.funnel_svg(data, date, marks, current.resets)}

        def do_reset(current: TabSession | None, task_id: str, seed_value: str, family_value: str,
                     difficulty_value: str, density_value: str, count_value: str, column: str,
                     request: gr.Request) -> dict[Any, Any]:
            current = session_for(current, request)
            try:
                kwargs = forms.reset_kwargs(task_id, seed_value, family_value, difficulty_value, density_value,
                                        count_value)
                observation = current.reset(**kwargs)
            except (ValueError, DebuggerError) as exc:
                return error_update(current, exc)
            if observation.status == "error":
                return {session_state: current, status: forms.status_markdown(observation, current.config)}
            data = current.charts
            if data is None:  # a reset reads the charts or raises
                return error_update(current, DebuggerError("the episode's charts were not read"))
            marks = charts.marks_for(data.annotations, observation.debug)
            tools = [name for name, m in current.methods.items() if m["kind"] == "analysis"]
            generators = [name for name, m in current.methods.items() if m["kind"] == "generator"]
            debug = observation.debug
            return {
                session_state: current, status: forms.status_markdown(observation, current.config),
                counts_chart: charts.daily_counts_svg(data, marks, current.resets),
                rates_chart: charts.conversion_svg(data, marks, current.resets),
                chart_date: gr.update(choices=data.dates, value=data.dates[-1]),
                **chart_updates(current, data.dates[-1], column),
                tool_name: gr.update(choices=tools, value=tools[0]),
                tool_help: forms.describe_method(current.methods[tools[0]]),
                tool_args: json.dumps(forms.default_arguments(current.methods[tools[0]]), indent=2),
                tool_table: forms.EMPTY_RESULT, tool_json: None,
                generator_name: gr.update(choices=generators, value=generators[0]),
                generator_args: json.dumps(forms.default_arguments(current.methods[generators[0]]), indent=2),
                payload: forms.empty_payload(), preview_table: forms.issues_table([]), breakdown: forms.EMPTY_BREAKDOWN,
                issues: forms.issues_table([]), comparison: forms.comparison_table(None),
                submit_button: forms.submit_label(observation),
                confirm_button: gr.update(visible=False),
                instruction: observation.instruction,
                definitions: pd.DataFrame([d.model_dump() for d in observation.conversion_metric_definitions]),
                debug_panel: gr.update(visible=debug is not None),
                expected_table: charts.expected_rows_table(debug),
                debug_json: None if debug is None else {k: v for k, v in debug.items() if k != "expected_rows"},
                **cuboid_controls(current, observation),
            }

        def cuboid_controls(current: TabSession, observation: MetricTrackerRlObservation) -> dict[Any, Any]:
            """The cuboid tab's controls for the new episode: a dropdown per dimension it has, its context
            tables, and an empty chart."""
            tables = cuboids.context_tables(observation.segments)
            updates: dict[Any, Any] = {
                cuboid_note: CUBOID_NOTE if current.dimensions else CUBOID_NOTE_FLAT,
                cuboid_chart: "", context_rows: forms.EMPTY_RESULT, context_panel: gr.update(visible=bool(tables)),
                context_table: gr.update(choices=tables, value=tables[0] if tables else None)}
            for field, dropdown in zip(SEGMENT_FIELDS, cuboid_fields, strict=True):
                values = current.dimensions.get(field)
                updates[dropdown] = gr.update(choices=[cuboids.ALL_VALUES, *(values or [])],
                                              value=cuboids.ALL_VALUES, visible=values is not None)
            return updates

        def chart_cuboid(current: TabSession | None, metric: str, *choices: str) -> dict[Any, Any]:
            if current is None or not current.dimensions:
                return {cuboid_note: CUBOID_NOTE_FLAT}
            cuboid = cuboids.cuboid_of(dict(zip(SEGMENT_FIELDS, choices, strict=True)))
            try:
                rows = current.read_query(cuboids.cuboid_query(cuboid))
                dates, observed, baseline = cuboids.cuboid_series(rows, metric)
            except (*CONNECTION_ERRORS, RuntimeError, ValueError) as exc:
                return {cuboid_note: f"The cuboid could not be read: {exc}"}
            data = current.charts
            marks = charts.marks_for(data.annotations if data else [],
                                     current.observation.debug if current.observation else None)
            return {cuboid_note: CUBOID_NOTE,
                    cuboid_chart: charts.baseline_chart_svg(dates, observed, baseline, metric,
                                                            cuboids.cuboid_title(cuboid, metric), marks,
                                                            current.resets)}

        def read_context(current: TabSession | None, table: str | None) -> dict[Any, Any]:
            if current is None or current.observation is None:
                return {}
            try:
                sql = cuboids.context_query(table or "", cuboids.context_tables(current.observation.segments))
                return {context_rows: forms.result_table({"rows": current.read_query(sql)})}
            except (*CONNECTION_ERRORS, RuntimeError, ValueError) as exc:
                return {cuboid_note: f"The context table could not be read: {exc}"}

        def select_difficulty(difficulty_value: str) -> dict[Any, Any]:
            """Choosing a difficulty selects its first named task (or none: the difficulty's own defaults)."""
            named = [task_id for task_id in NAMED_TASK_ORDER if TASKS[task_id].difficulty == difficulty_value]
            return {task: named[0] if named else forms.DEFAULT_CHOICE}

        def do_charts(current: TabSession | None, date: str | None, column: str) -> dict[Any, Any]:
            return chart_updates(current, date, column) if current is not None else {}

        def select_method(current: TabSession | None, name: str | None) -> tuple[str, str]:
            method = (current.methods if current else {}).get(name or "")
            if method is None:
                return "", "{}"
            return forms.describe_method(method), json.dumps(forms.default_arguments(method), indent=2)

        def select_generator(current: TabSession | None, name: str | None) -> str:
            return select_method(current, name)[1]

        def stepped(current: TabSession | None, request: gr.Request,
                    build_action: Callable[[], MetricTrackerRlAction],
                    view: Callable[[MetricTrackerRlObservation], dict[Any, Any]]) -> dict[Any, Any]:
            """One step of the tab's episode: the status line plus the outputs `view` derives from it."""
            current = session_for(current, request)
            try:
                observation = current.step(build_action())
            except (ValueError, DebuggerError) as exc:
                return error_update(current, exc)
            return {session_state: current, status: forms.status_markdown(observation, current.config),
                    submit_button: forms.submit_label(observation), **view(observation)}

        def tool_call(name: str, args_text: str) -> Callable[[], MetricTrackerRlAction]:
            return lambda: MetricTrackerRlAction(analysis_method=name, analysis_args=forms.parse_arguments(args_text))

        def run_tool(current: TabSession | None, name: str, args_text: str,
                     request: gr.Request) -> dict[Any, Any]:
            return stepped(current, request, tool_call(name, args_text),
                           lambda o: {tool_table: forms.result_table(o.analysis_result), tool_json: o.analysis_result})

        def generate(current: TabSession | None, name: str, args_text: str, rows: pd.DataFrame,
                     request: gr.Request) -> dict[Any, Any]:
            return stepped(current, request, tool_call(name, args_text),
                           lambda o: {payload: forms.merge_rows(rows, (o.analysis_result or {}).get("rows", []))})

        def preview(current: TabSession | None, rows: pd.DataFrame, request: gr.Request) -> dict[Any, Any]:
            """Preview issues replace the last graded breakdown, which described other rows."""
            return stepped(
                current, request,
                lambda: MetricTrackerRlAction(analysis_method="preview_submission",
                                              analysis_args={"rows": forms.rows_from_frame(rows)}),
                lambda o: {preview_table: forms.issues_table((o.analysis_result or {}).get("issues", [])),
                           breakdown: forms.EMPTY_BREAKDOWN, issues: forms.issues_table([])})

        def grade(current: TabSession | None, rows: pd.DataFrame, request: gr.Request) -> dict[Any, Any]:
            return stepped(current, request,
                           lambda: MetricTrackerRlAction(classifications=forms.rows_from_frame(rows)),
                           lambda o: {breakdown: forms.breakdown_table(o),
                                      issues: forms.issues_table(o.submission_issues),
                                      comparison: forms.comparison_table(o),
                                      preview_table: forms.issues_table([]), confirm_button: gr.update(visible=False)})

        def submit(current: TabSession | None, rows: pd.DataFrame, request: gr.Request) -> dict[Any, Any]:
            """An empty payload is graded only after a second, explicit press."""
            if forms.rows_from_frame(rows) or current is None or current.observation is None:
                return grade(current, rows, request)
            return {session_state: current,
                    status: forms.status_markdown(current.observation, current.config, forms.EMPTY_REPORT_WARNING,
                                              heading="confirm"),
                    confirm_button: gr.update(visible=True)}

        def close_tab(request: gr.Request) -> None:
            if request.session_hash is not None:
                _close(open_sessions.pop(request.session_hash, None))

        reset_inputs = [session_state, task, seed, family, difficulty, density, count, heat_column]
        reset_outputs = [session_state, status, counts_chart, rates_chart, heatmap_chart, funnel_chart, chart_date,
                         tool_name, tool_help, tool_args, tool_table, tool_json, generator_name, generator_args,
                         payload, preview_table, breakdown, issues, comparison, submit_button, confirm_button,
                         instruction,
                         definitions, debug_panel, expected_table, debug_json, cuboid_note, cuboid_chart,
                         context_rows, context_table, context_panel, *cuboid_fields]
        graded_outputs = [session_state, status, submit_button, breakdown, issues, comparison, preview_table,
                          confirm_button]
        demo.load(do_reset, reset_inputs, reset_outputs)
        difficulty.input(select_difficulty, [difficulty], [task])
        cuboid_button.click(chart_cuboid, [session_state, cuboid_metric, *cuboid_fields], [cuboid_note, cuboid_chart])
        context_button.click(read_context, [session_state, context_table], [cuboid_note, context_rows])
        reset_button.click(do_reset, reset_inputs, reset_outputs)
        chart_date.input(do_charts, [session_state, chart_date, heat_column], [heatmap_chart, funnel_chart])
        heat_column.input(do_charts, [session_state, chart_date, heat_column], [heatmap_chart, funnel_chart])
        tool_name.input(select_method, [session_state, tool_name], [tool_help, tool_args])
        generator_name.input(select_generator, [session_state, generator_name], [generator_args])
        run_button.click(run_tool, [session_state, tool_name, tool_args],
                         [session_state, status, submit_button, tool_table, tool_json])
        generate_button.click(generate, [session_state, generator_name, generator_args, payload],
                              [session_state, status, submit_button, payload])
        clear_button.click(forms.empty_payload, None, [payload])
        preview_button.click(preview, [session_state, payload],
                             [session_state, status, submit_button, preview_table, breakdown, issues])
        submit_button.click(submit, [session_state, payload], graded_outputs)
        confirm_button.click(grade, [session_state, payload], graded_outputs)
        demo.unload(close_tab)
    return quiet_when_idle(demo)
