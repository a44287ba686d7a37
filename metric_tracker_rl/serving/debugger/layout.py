"""The /web debugger's page, part by part: the reset form, then one tab each for the charts, a cuboid, the
analysis tools, the payload and the episode, and the ground-truth panel. Each builder lays its part out inside
the page's `gr.Blocks` and returns its components, which `page.DebuggerPage` wires to events.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from metric_tracker_rl import DEFAULT_TASK_ORDER, NAMED_TASK_ORDER
from metric_tracker_rl.catalog.published import COUNT_COLUMNS, DIFFICULTIES, SCENARIO_FAMILIES
from metric_tracker_rl.serving.debugger import charts, forms
from metric_tracker_rl.serving.debugger import cuboid as cuboids
from metric_tracker_rl.world.segments import SEGMENT_FIELDS

CHART_CSS = """
.mt-chart { background: #ffffff; color: #24292f; border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 12px; }
.mt-chart-title { font-weight: 600; font-size: 15px; margin-bottom: 6px; }
.mt-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 4px 14px; }
.mt-chart svg { width: 100%; height: auto; display: block; font-family: system-ui, sans-serif; }
.mt-legend { font-size: 12px; color: #57606a; margin-top: 4px; }
"""
CUBOID_NOTE = (
    "Choose a value of any dimensions (the rest stay at all values) and a metric: the chart shows that "
    "cuboid's daily value (green) against its published baseline, the median of the same weekday in the "
    "other weeks (grey, dashed). It is read in a separate read-only session and costs no steps."
)
# In held-out mode every reset draws a fresh episode, so a read-only session (which resets to read) would read another
# one: the charts and cuboids are not drawn, rather than drawn from the wrong episode.
HELD_OUT_NOTE = (
    "Held-out mode: charts and cuboids are not drawn, since a separate read-only session would draw "
    "another episode than this tab plays (every reset is a fresh one). The analysis tools read this one."
)
CUBOID_NOTE_FLAT = "This episode has one aggregate funnel: no dimensions to choose (reset a segmented difficulty)."


def cuboid_note_raw(dimensions: list[str]) -> str:
    """The cuboid page's note at a tier of raw events: its dimensions are columns of its tables, not count tables
    the chart could read."""
    named = f" ({', '.join(dimensions)})" if dimensions else ""
    return (
        f"This episode's data are raw events: its dimensions{named} are columns of its tables, and this chart "
        "reads count tables it does not have. Read a cuboid with the query tool (Analysis tools), whose tables "
        "the brief lists."
    )


def _chart_box(elem_id: str) -> gr.HTML:
    return gr.HTML("", elem_id=elem_id, css_template=CHART_CSS, js_on_load=None)


@dataclass(frozen=True)
class ResetForm:
    """The episode's settings and the Reset button, above the tabs, with the status line under them."""

    task: gr.Dropdown
    seed: gr.Textbox
    family: gr.Dropdown
    difficulty: gr.Dropdown
    density: gr.Textbox
    count: gr.Textbox
    button: gr.Button
    status: gr.Markdown


def reset_form() -> ResetForm:
    with gr.Row(equal_height=True):
        task = gr.Dropdown(
            [forms.DEFAULT_CHOICE, *NAMED_TASK_ORDER],
            value=DEFAULT_TASK_ORDER[0],
            label="Task",
            elem_id="reset-task",
            scale=2,
            min_width=220,
        )
        seed = gr.Textbox(label="seed", placeholder="task default", elem_id="reset-seed")
        family = gr.Dropdown(
            [forms.DEFAULT_CHOICE, *SCENARIO_FAMILIES], value=forms.DEFAULT_CHOICE, label="scenario_family"
        )
        difficulty = gr.Dropdown(
            [forms.DEFAULT_CHOICE, *DIFFICULTIES],
            value=forms.DEFAULT_CHOICE,
            label="difficulty",
            elem_id="reset-difficulty",
        )
        density = gr.Textbox(label="anomaly_density", placeholder="task default", elem_id="reset-density")
        count = gr.Textbox(label="anomaly_count", placeholder="task default", elem_id="reset-count")
        button = gr.Button("Reset", variant="primary", elem_id="reset-button")
    status = gr.Markdown("Resetting…", elem_id="status")
    return ResetForm(task, seed, family, difficulty, density, count, button, status)


@dataclass(frozen=True)
class ChartsTab:
    """The episode's daily counts and conversions, and one date's funnel and the hours of one event."""

    date: gr.Dropdown
    heat_column: gr.Dropdown
    counts: gr.HTML
    rates: gr.HTML
    heatmap: gr.HTML
    funnel: gr.HTML


def charts_tab() -> ChartsTab:
    with gr.Tab("Charts"):
        with gr.Row():
            date = gr.Dropdown([], label="Date for the funnel chart", elem_id="chart-date")
            heat_column = gr.Dropdown(
                list(COUNT_COLUMNS), value=COUNT_COLUMNS[0], label="Event for the hourly heatmap", elem_id="heat-column"
            )
        counts = _chart_box("chart-counts")
        rates = _chart_box("chart-rates")
        with gr.Row():
            heatmap = _chart_box("chart-heatmap")
            funnel = _chart_box("chart-funnel")
        gr.Markdown(
            "Grey bands: dates with calendar notes (get_annotations; at a tier of raw events, its "
            "releases), labelled with their kind; "
            "hover a band or a point for details. Charts come from a separate read-only session "
            "with the same settings and cost this episode no steps."
        )
    return ChartsTab(date, heat_column, counts, rates, heatmap, funnel)


@dataclass(frozen=True)
class CuboidTab:
    """A segmented episode's cuboid chart (a dropdown per dimension) and its context tables."""

    note: gr.Markdown
    fields: list[gr.Dropdown]  # one per SEGMENT_FIELDS entry, shown where the episode has the dimension
    metric: gr.Dropdown
    button: gr.Button
    chart: gr.HTML
    context_panel: gr.Column
    context_table: gr.Dropdown
    context_button: gr.Button
    context_rows: gr.Dataframe


def cuboid_tab() -> CuboidTab:
    with gr.Tab("Cuboid", elem_id="cuboid-tab"):
        note = gr.Markdown(CUBOID_NOTE_FLAT, elem_id="cuboid-note")
        with gr.Row():
            fields = [
                gr.Dropdown(
                    [cuboids.ALL_VALUES],
                    value=cuboids.ALL_VALUES,
                    label=field,
                    elem_id=f"cuboid-{field}",
                    visible=False,
                )
                for field in SEGMENT_FIELDS
            ]
            metric = gr.Dropdown(
                list(cuboids.CUBOID_METRICS), value=cuboids.CUBOID_METRICS[0], label="metric", elem_id="cuboid-metric"
            )
        button = gr.Button("Chart the cuboid", elem_id="cuboid-chart-button")
        chart = _chart_box("chart-cuboid")
        with gr.Column(visible=False, elem_id="context-panel") as context_panel:
            with gr.Row():
                context_table = gr.Dropdown([], label="Context table", elem_id="context-table")
                context_button = gr.Button("Read the table", elem_id="context-read")
            context_rows = gr.Dataframe(
                forms.EMPTY_RESULT,
                label="Context rows (the first 200)",
                elem_id="context-rows",
                wrap=True,
                max_height=800,
            )
    return CuboidTab(note, fields, metric, button, chart, context_panel, context_table, context_button, context_rows)


@dataclass(frozen=True)
class ToolsTab:
    """One analysis tool, its arguments and its result."""

    name: gr.Dropdown
    args: gr.Code
    help: gr.Markdown
    run_button: gr.Button
    table: gr.Dataframe
    json: gr.JSON


def tools_tab() -> ToolsTab:
    with gr.Tab("Analysis tools"):
        with gr.Row():
            name = gr.Dropdown([], label="Tool", elem_id="tool-name", scale=1)
            args = gr.Code("{}", language="json", label="Arguments (JSON)", elem_id="tool-args", scale=2)
        help_text = gr.Markdown(elem_id="tool-help")
        run_button = gr.Button("Run tool", variant="primary", elem_id="run-tool")
        table = gr.Dataframe(
            forms.EMPTY_RESULT,
            label="Result table (numbers rounded; the raw JSON below keeps full precision)",
            elem_id="tool-table",
            wrap=True,
            max_height=1200,
        )
        with gr.Accordion("Raw result (JSON)", open=False):
            raw = gr.JSON(label="Raw result", elem_id="tool-json")
    return ToolsTab(name, args, help_text, run_button, table, raw)


@dataclass(frozen=True)
class PayloadTab:
    """The report being built: generated and edited rows, their preview, the submission and its grading."""

    generator_name: gr.Dropdown
    generator_args: gr.Code
    generate_button: gr.Button
    payload: gr.Dataframe
    clear_button: gr.Button
    preview_button: gr.Button
    submit_button: gr.Button
    confirm_button: gr.Button
    preview_table: gr.Dataframe
    breakdown: gr.Dataframe
    issues: gr.Dataframe
    comparison: gr.Dataframe


def payload_tab() -> PayloadTab:
    with gr.Tab("Payload"):
        with gr.Row():
            generator_name = gr.Dropdown([], label="Generator", elem_id="generator-name", scale=1)
            generator_args = gr.Code(
                "{}", language="json", label="Generator arguments (JSON)", elem_id="generator-args", scale=2
            )
        generate_button = gr.Button("Add generated rows", elem_id="generate-rows")
        payload = gr.Dataframe(
            forms.empty_payload(),
            label="Payload rows (editable; date, entity_type and entity_name stay pinned if the table scrolls)",
            interactive=True,
            elem_id="payload",
            row_count=1,
            pinned_columns=3,
            wrap=True,
        )
        with gr.Row():
            clear_button = gr.Button("Clear rows")
            preview_button = gr.Button("Preview (uses a step, no submission)", elem_id="preview")
            submit_button = gr.Button(forms.submit_label(None), variant="primary", elem_id="submit")
        confirm_button = gr.Button("Submit the empty report", variant="stop", visible=False, elem_id="confirm-empty")
        preview_table = gr.Dataframe(forms.issues_table([]), label="Preview issues", elem_id="preview-issues")
        breakdown = gr.Dataframe(forms.EMPTY_BREAKDOWN, label="Reward breakdown", elem_id="reward-breakdown")
        issues = gr.Dataframe(forms.issues_table([]), label="Submission issues", elem_id="submission-issues")
        comparison = gr.Dataframe(
            forms.comparison_table(None),
            label="Graded comparison (once the episode "
            "is over, open mode only): each row's verdict, then the missed incidents",
            elem_id="graded-comparison",
            wrap=True,
        )
    return PayloadTab(
        generator_name,
        generator_args,
        generate_button,
        payload,
        clear_button,
        preview_button,
        submit_button,
        confirm_button,
        preview_table,
        breakdown,
        issues,
        comparison,
    )


@dataclass(frozen=True)
class EpisodeTab:
    """The episode's instruction and its conversion metrics' definitions."""

    instruction: gr.Markdown
    definitions: gr.Dataframe


def episode_tab() -> EpisodeTab:
    with gr.Tab("Episode"):
        instruction = gr.Markdown(elem_id="instruction")
        definitions = gr.Dataframe(
            forms.EMPTY_DEFINITIONS, label="Conversion metric definitions", elem_id="definitions"
        )
    return EpisodeTab(instruction, definitions)


@dataclass(frozen=True)
class TruthPanel:
    """The ground truth, shown only when the server runs in debug mode (observations then carry it)."""

    panel: gr.Accordion
    expected: gr.Dataframe
    injections: gr.JSON


def truth_panel() -> TruthPanel:
    with gr.Accordion("Ground truth (server debug mode)", open=True, visible=False, elem_id="debug-panel") as panel:
        expected = gr.Dataframe(
            charts.expected_rows_table(None),
            label="Expected rows",
            elem_id="debug-expected",
            wrap=True,
            pinned_columns=3,
        )
        injections = gr.JSON(label="Injections and distractors")
    return TruthPanel(panel, expected, injections)
