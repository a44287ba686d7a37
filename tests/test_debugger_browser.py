"""The /web debugger in headless Chromium against a real server process.

Needs Debian's chromium at /usr/bin/chromium (CI installs it) and the playwright package; skipped otherwise.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from conftest import BROWSER_GROUP, ROOT, running_server, serving
from core_helpers import reset_episode

from metric_tracker_rl.catalog.tiers import AUDIT
from metric_tracker_rl.server_process import free_port
from metric_tracker_rl.serving.debugger.forms import SUBMISSION_COLUMNS
from metric_tracker_rl.world.context import CONTEXT_TABLES

pytestmark = pytest.mark.slow  # starts server processes or a browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TASK = "medium_mixed_three"
DEEP_TASK = "deep_cuboids"
TIMEOUT_MS = 90_000
ARTIFACTS = ROOT / "artifacts"
LONG_FRACTION = re.compile(r"\.0*[1-9]\d{4,}")  # five or more significant digits after the point
CHART_BOXES = ("chart-counts", "chart-rates", "chart-heatmap", "chart-funnel")

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason=BROWSER_GROUP)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def web_url() -> Iterator[str]:
    """Plain `uvicorn server.app:app` on a random port, told nothing: the debugger is on by default and finds
    its own episode API from the page's request."""
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PORT", "ENABLE_WEB_INTERFACE", "METRIC_TRACKER_SELF_URL")
    }
    command = [sys.executable, "-m", "uvicorn", "server.app:app", "--host", "127.0.0.1", "--port", str(port)]
    with serving(command, port, {**env, "METRIC_TRACKER_DEBUG": "0"}) as url:
        yield url


class DebuggerPage:
    """The page and the few gestures the tests need; also records any request that leaves loopback."""

    def __init__(self, browser: object, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.set_default_timeout(TIMEOUT_MS)
        self.outside_requests: list[str] = []
        self.page.on("request", self._record)
        self.page.goto(f"{url}/web/")
        self.wait_status("Steps left")
        self.wait_charts(drawn_after=0)  # the page's own first reset

    def _record(self, request: object) -> None:
        parsed = urlparse(request.url)
        if parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname not in ("127.0.0.1", "localhost"):
            self.outside_requests.append(request.url)

    def status(self) -> str:
        return self.page.inner_text("#status")

    def wait_status(self, *texts: str) -> str:
        condition = " && ".join(f"s.includes({text!r})" for text in texts)
        try:
            self.page.wait_for_function(
                f"(() => {{ const e = document.querySelector('#status'); "
                f"const s = e ? e.innerText : ''; return {condition}; }})()"
            )
        except sync_api.TimeoutError:
            pytest.fail(f"status never showed {texts}; it shows: {self.status()!r}")
        return self.status()

    def chart_resets(self) -> list[int]:
        """The reset each chart on the page was drawn for (every chart carries its tab's reset count)."""
        return self.page.eval_on_selector_all(".mt-chart", "els => els.map(e => Number(e.dataset.reset))")

    def wait_charts(self, drawn_after: int) -> None:
        """Wait until every chart box holds a chart drawn for a reset later than `drawn_after`: the status and the
        charts are separate components, and a busy browser may show one before the other."""
        boxes = ", ".join(repr(f"#{box} .mt-chart") for box in CHART_BOXES)
        try:
            self.page.wait_for_function(
                f"[{boxes}].every(s => {{ const c = document.querySelector(s); "
                f"return c !== null && Number(c.dataset.reset) > {drawn_after}; }})"
            )
        except sync_api.TimeoutError:
            pytest.fail(f"the charts were never drawn after reset {drawn_after}; they show {self.chart_resets()}")

    def choose(self, elem_id: str, option: str) -> None:
        self.page.click(f"#{elem_id} input")
        self.page.get_by_role("option", name=option, exact=True).click()

    def set_code(self, elem_id: str, text: str) -> None:
        editor = self.page.locator(f"#{elem_id} .cm-content")
        editor.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.press("Delete")
        editor.fill(text)

    def tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name).click()

    def reset(self, task_id: str) -> str:
        """Reset to the task; return once the status and every chart show the new episode."""
        drawn_for = max(self.chart_resets())
        self.choose("reset-task", task_id)
        self.page.click("#reset-button")
        status = self.wait_status(f"task_id={task_id}", "Steps left: 40")
        self.wait_charts(drawn_after=drawn_for)
        return status

    def run_tool(self, name: str, arguments: str | None = None) -> str:
        steps_left = int(self.status().split("Steps left: ")[1].split()[0])
        self.tab("Analysis tools")
        self.choose("tool-name", name)
        self.page.wait_for_function(f"document.querySelector('#tool-help').innerText.includes({name!r})")
        if arguments is not None:
            self.set_code("tool-args", arguments)
        self.page.click("#run-tool")
        return self.wait_status(f"{name} ran", f"Steps left: {steps_left - 1}")

    def row_count(self, elem_id: str) -> int:
        """Data rows of a table (its grid counts the header row too)."""
        return int(self.page.get_attribute(f"#{elem_id} [role=grid]", "aria-rowcount")) - 1

    def rendered_rows(self, elem_id: str) -> list[str]:
        return self.page.eval_on_selector_all(
            f"#{elem_id} [role=row][data-index]", "els => els.map(e => e.innerText.replace(/\\s+/g, ' '))"
        )

    def every_row(self, elem_id: str, before: list[str] | None = None) -> list[str]:
        """The table's rows once the page has drawn them: as many as its grid counts, other than `before` (the
        rows it showed before the call), and the same on two reads in a row. The status line can say a tool ran
        while the table still shows the last result, or only the first of its new rows."""
        deadline, last = time.monotonic() + 15, None
        while True:
            rows = self.rendered_rows(elem_id)
            state = (rows, self.row_count(elem_id))
            if (rows and len(rows) == state[1] and rows != before and state == last) or time.monotonic() > deadline:
                return rows
            last = state
            self.page.wait_for_timeout(250)

    def row_texts(self) -> list[str]:
        """Each rendered table row and each text block, so a leaked report row shows up as one string."""
        return self.page.eval_on_selector_all(
            "[role=row], tr, p, li, pre, .cm-line", "els => els.map(e => e.innerText.replace(/\\s+/g, ' '))"
        )


def expected_triples() -> list[tuple[str, str, str]]:
    truth = reset_episode(task_id=TASK).truth
    return [(r.date, r.entity_name, r.anomaly_type) for r in truth.expected_rows]


def leaked_rows(page: DebuggerPage) -> list[str]:
    triples = expected_triples()
    return [text for text in page.row_texts() if any(all(part in text for part in t) for t in triples)]


def submissions_left(status: str) -> int:
    return int(status.split("submissions left: ")[1].split()[0])


def shot(page: DebuggerPage, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.page.screenshot(path=str(ARTIFACTS / f"debugger_{name}.png"), full_page=True)


def header_texts(page: DebuggerPage, elem_id: str) -> list[str]:
    return page.page.eval_on_selector_all(f"#{elem_id} [role=columnheader]", "els => els.map(e => e.innerText.trim())")


def test_reset_run_a_tool_build_and_submit_a_report(browser, web_url: str) -> None:
    page = DebuggerPage(browser, web_url)
    status = page.reset(TASK)
    left = submissions_left(status)

    status = page.run_tool("list_suspicious_dates", '{"limit": 5}')
    assert "Steps left: 39" in status
    assert page.row_count("tool-table") == 5
    # Numbers are rounded for reading; the raw JSON keeps every digit.
    assert not [row for row in page.rendered_rows("tool-table") if LONG_FRACTION.search(row)]

    page.tab("Payload")
    assert left == 1  # one graded report by default: the button says it ends the episode
    ends = "Submit report (uses the only graded submission left and ends the episode)"
    assert page.page.inner_text("#submit") == ends
    page.choose("generator-name", "get_median_filter_rows")
    page.set_code("generator-args", '{"threshold_multiplier": 4.0}')
    page.page.click("#generate-rows")
    page.wait_status("get_median_filter_rows ran", "Steps left: 38")
    generated = page.row_count("payload")
    assert generated >= 1
    assert not [row for row in page.rendered_rows("payload") if LONG_FRACTION.search(row)]

    page.page.click("#submit")
    status = page.wait_status("graded", f"submissions left: {left - 1}")
    breakdown = dict(row.split(maxsplit=1) for row in page.rendered_rows("reward-breakdown"))
    assert {"score", "recall_quality", "precision", "false_positive_count"} <= set(breakdown)
    assert float(breakdown["submitted_row_count"]) == generated
    assert float(breakdown["score"]) == pytest.approx(float(status.split("Last score: ")[1].split()[0]), abs=1e-3)
    shot(page, "submission")

    assert page.page.inner_text("#submit") == "Submit report (episode over: press Reset)"
    # The graded report ended the episode: a preview now is refused, and says why.
    page.page.click("#preview")
    page.wait_status("episode is over")
    page.tab("Charts")
    shot(page, "charts")
    assert page.outside_requests == []
    page.page.close()


def test_every_payload_column_is_readable_at_1400_px(browser, web_url: str) -> None:
    page = DebuggerPage(browser, web_url)
    page.reset(TASK)
    page.tab("Payload")
    page.page.click("#generate-rows")
    page.wait_status("ran", "Steps left: 39")
    right_edge = page.page.eval_on_selector("#payload", "e => e.getBoundingClientRect().right")
    headers = page.page.eval_on_selector_all(
        "#payload [role=columnheader]", "els => els.map(e => [e.innerText.trim(), e.getBoundingClientRect().right])"
    )
    assert [name for name, _ in headers] == list(SUBMISSION_COLUMNS)
    # Every value is whole on one line; the table scrolls sideways with the key columns pinned in view.
    assert all(0 < right <= right_edge for _, right in headers[:3]), (headers, right_edge)
    clipped = page.page.eval_on_selector_all(
        "#payload td, #payload [role=columnheader]",
        "els => els.filter(e => e.innerText.trim() && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)",
    )
    assert clipped == [] and unreadable_cells(page, "payload") == []
    shot(page, "payload")
    page.page.close()


def test_tables_start_with_their_own_headers(browser, web_url: str) -> None:
    page = DebuggerPage(browser, web_url)
    page.reset(TASK)
    expected = {
        "tool-table": ["field", "value"],
        "preview-issues": ["row_index", "code", "message"],
        "reward-breakdown": ["component", "value"],
        "submission-issues": ["row_index", "code", "message"],
        "payload": list(SUBMISSION_COLUMNS),
    }
    for tab, tables in (
        ("Analysis tools", ["tool-table"]),
        ("Payload", ["payload", "preview-issues", "reward-breakdown", "submission-issues"]),
    ):
        page.tab(tab)
        for elem_id in tables:
            assert header_texts(page, elem_id) == expected[elem_id], elem_id
    page.page.close()


def test_an_empty_report_is_graded_only_after_confirmation(browser, web_url: str) -> None:
    page = DebuggerPage(browser, web_url)
    left = submissions_left(page.reset(TASK))
    page.tab("Payload")
    assert not page.page.locator("#confirm-empty").is_visible()
    page.page.click("#submit")
    status = page.wait_status("payload is empty")
    assert f"submissions left: {left}" in status and "Steps left: 40" in status  # nothing used yet
    page.page.locator("#confirm-empty").wait_for(state="visible")
    shot(page, "empty_report_confirmation")
    page.page.click("#confirm-empty")
    status = page.wait_status("graded", f"submissions left: {left - 1}")
    assert "Graded 0 row(s)" in status
    page.page.locator("#confirm-empty").wait_for(state="hidden")
    page.page.close()


def test_bad_json_names_line_and_column_and_keeps_the_episode_lines(browser, web_url: str) -> None:
    page = DebuggerPage(browser, web_url)
    page.reset(TASK)
    page.tab("Analysis tools")
    page.choose("tool-name", "list_suspicious_dates")
    page.page.wait_for_function("document.querySelector('#tool-help').innerText.includes('list_suspicious_dates')")
    page.set_code("tool-args", '{\n"limit": 3,\n}')
    page.page.click("#run-tool")
    status = page.wait_status("not valid JSON")
    assert "line 3, column 1" in status
    assert f"task_id={TASK}" in status and "Steps left: 40" in status  # no step used, the episode lines stay
    shot(page, "json_error")
    page.page.close()


def test_calendar_notes_are_labelled_on_every_chart(browser, web_url: str) -> None:
    page = DebuggerPage(browser, web_url)
    page.reset(TASK)
    kinds = sorted(note.kind for note in reset_episode(task_id=TASK).public.annotations)
    assert kinds
    labels = page.page.eval_on_selector_all(
        ".mt-chart svg.panel, .mt-chart svg.heatmap",
        "els => els.map(svg => [...svg.querySelectorAll('.mark-label')].map(t => t.textContent).sort())",
    )
    assert len(labels) == 5 + 7 + 1 and all(found == kinds for found in labels)
    noted = reset_episode(task_id=TASK).public.annotations[0]
    page.choose("chart-date", noted.date)
    # The chart's own figure (while an update is pending, the box may also hold the page's loading indicator).
    figure = "#chart-funnel .mt-chart svg"
    page.page.wait_for_function(
        f"(document.querySelector({figure!r}) || {{textContent: ''}}).textContent.includes({noted.date[5:]!r})"
    )
    assert noted.kind in page.page.text_content(figure)
    page.page.close()


def test_a_difficulty_selects_its_task_and_a_cuboid_is_charted_against_its_baseline(browser, web_url: str) -> None:
    page = DebuggerPage(browser, web_url)
    page.choose("reset-difficulty", "frontier")
    page.page.wait_for_function("document.querySelector('#reset-task input').value === 'frontier_segments'")
    page.reset("frontier_segments")
    page.tab("Cuboid")
    page.choose("cuboid-platform", "android")
    page.choose("cuboid-country", "IN")
    page.choose("cuboid-metric", "app_open_to_menu_open")
    page.page.click("#cuboid-chart-button")
    chart = "#chart-cuboid .mt-chart"
    page.page.wait_for_function(
        f"(document.querySelector({chart!r}) || {{innerText: ''}}).innerText.includes('platform=android ∧ country=IN')"
    )
    dots = page.page.eval_on_selector_all(f"{chart} circle title", "els => els.map(e => e.textContent)")
    assert len(dots) == 56 and all("baseline" in dot for dot in dots)
    assert page.page.locator(f"{chart} polyline.baseline").count() == 1
    assert not page.page.is_visible("#cuboid-channel")  # frontier has no channel dimension
    shot(page, "cuboid")


def test_an_audit_episode_is_played_with_the_texts_of_its_tier(browser, web_url: str) -> None:
    """The audit, a tier of raw events with five dimensions: its episode line shows the incident count as the tier
    draws it (no density), the cuboid page says why it cannot chart its dimensions instead of that it has none,
    the instruction names only the tier's own tools; then a tool, a query and an empty report are played."""
    page = DebuggerPage(browser, web_url)
    drawn_for = max(page.chart_resets())
    page.choose("reset-difficulty", "audit")
    page.page.wait_for_function("document.querySelector('#reset-task input').value === '(default)'")
    page.page.locator("#reset-seed textarea, #reset-seed input").first.fill("80000")
    page.page.click("#reset-button")
    status = page.wait_status("difficulty=audit", f"Steps left: {AUDIT.max_steps}")
    page.wait_charts(drawn_after=drawn_for)
    # The audit shows no count of its own (a null episode must read as any other): the brief's line is the tier's rule.
    assert "seed=80000" in status and "anomaly_count" not in status and "anomaly_density" not in status
    page.tab("Cuboid")
    page.page.wait_for_function("document.querySelector('#cuboid-note').innerText.includes('raw events')")
    note = page.page.inner_text("#cuboid-note")
    assert "no dimensions" not in note
    assert all(field in note for field in ("platform", "country", "app_version", "channel", "user_type")), note
    page.tab("Episode")
    instruction = page.page.inner_text("#instruction")
    assert "query" in instruction and "metrics_layer" in instruction, instruction
    assert not {"get_annotations", "available_methods", "payload_generators"} & set(re.findall(r"\w+", instruction))
    page.run_tool("metrics_layer")
    status = page.run_tool("query", '{"sql": "SELECT 1 AS one"}')
    assert f"Steps left: {AUDIT.max_steps - 2}" in status
    page.tab("Payload")
    page.page.click("#submit")
    page.wait_status("payload is empty")
    page.page.locator("#confirm-empty").wait_for(state="visible")
    page.page.click("#confirm-empty")
    status = page.wait_status("graded", "submissions left: 0")
    assert "Graded 0 row(s)" in status and "difficulty=audit" in status
    shot(page, "audit")
    assert page.outside_requests == []
    page.page.close()


def test_every_context_table_at_deep_is_read_in_the_cuboid_tab(browser, web_url: str) -> None:
    """The table list holds the episode's tables only (the brief's note on reading them is no table), starts on the
    first, and reading each one shows its rows under its own columns."""
    tables = reset_episode(task_id=DEEP_TASK).public.segments.sql_tables()
    listed = [name for name in tables if name in CONTEXT_TABLES]
    page = DebuggerPage(browser, web_url)
    page.choose("reset-difficulty", "deep")
    page.page.wait_for_function(f"document.querySelector('#reset-task input').value === {DEEP_TASK!r}")
    page.reset(DEEP_TASK)
    page.tab("Cuboid")
    page.page.locator("#context-panel").wait_for(state="visible")
    assert page.page.input_value("#context-table input") == CONTEXT_TABLES[0]
    page.page.click("#context-table input")
    offered = page.page.eval_on_selector_all(  # the chosen option's text starts with a check mark
        "[role=option]", "els => els.map(e => e.innerText.trim().split('\\n').pop().trim())"
    )
    page.page.keyboard.press("Escape")
    page.page.click("#cuboid-note")  # the list closed, the default still chosen
    assert sorted(offered) == sorted(listed) and set(listed) == set(CONTEXT_TABLES)
    for index, table in enumerate(CONTEXT_TABLES):
        if index:  # the first is read as the tab offers it
            page.choose("context-table", table)
        page.page.click("#context-read")
        columns = list(tables[table])
        try:
            page.page.wait_for_function(
                "cols => JSON.stringify([...document.querySelectorAll('#context-rows [role=columnheader]')]"
                ".map(e => e.innerText.trim())) === JSON.stringify(cols)",
                arg=columns,
            )
        except sync_api.TimeoutError:
            pytest.fail(f"{table} never showed its columns; the note says {page.page.inner_text('#cuboid-note')!r}")
        assert page.row_count("context-rows") == min(200, len(tables[table][columns[0]])) > 0, table
        assert "could not be read" not in page.page.inner_text("#cuboid-note"), table
    shot(page, "context_tables")
    page.page.close()


def test_the_site_has_a_favicon(browser, web_url: str) -> None:
    page = DebuggerPage(browser, web_url)
    response = page.page.request.get(f"{web_url}/favicon.ico")
    assert response.status == 200 and response.headers["content-type"] == "image/x-icon"
    assert response.body()[:4] == b"\x00\x00\x01\x00"
    page.page.close()


def test_standard_mode_page_shows_no_expected_row(browser, web_url: str) -> None:
    page = DebuggerPage(browser, web_url)
    page.reset(TASK)
    assert page.page.locator("#debug-panel").count() == 0 or not page.page.locator("#debug-panel").is_visible()
    assert leaked_rows(page) == []
    first_date = expected_triples()[0][0]
    shown: list[str] | None = None
    for name, arguments in [
        ("list_suspicious_dates", '{"limit": 28}'),
        ("get_annotations", None),
        ("rows_for_date", f'{{"date": "{first_date}"}}'),
        ("hourly_rows_for_date", f'{{"date": "{first_date}"}}'),
        ("check_impossible_counts", None),
    ]:
        page.run_tool(name, arguments)
        rows = shown = page.every_row("tool-table", shown)  # every row is on the page to check
        assert rows and len(rows) == page.row_count("tool-table"), name
        assert leaked_rows(page) == [], name
    assert not page.page.locator("#debug-expected").is_visible()
    page.page.close()


def test_each_tab_has_its_own_episode(browser, web_url: str) -> None:
    first, second = DebuggerPage(browser, web_url), DebuggerPage(browser, web_url)
    first.reset(TASK)
    first.run_tool("list_dates")
    second.reset("hard_mixed_multi")
    assert "Steps left: 39" in first.status() and "task_id=medium_mixed_three" in first.status()
    assert "Steps left: 40" in second.status()
    first.page.close()
    second.page.close()


def test_debug_mode_shows_the_ground_truth(browser) -> None:
    with running_server(extra_env={"ENABLE_WEB_INTERFACE": "true", "METRIC_TRACKER_DEBUG": "1"}, timeout_s=180) as url:
        page = DebuggerPage(browser, url)
        page.reset(TASK)
        page.page.wait_for_selector("#debug-expected [role=row][data-index]")
        rows = page.rendered_rows("debug-expected")
        for date, entity_name, anomaly_type in expected_triples():
            assert any(date in r and entity_name in r and anomaly_type in r for r in rows)
        shot(page, "debug_mode")
        page.page.close()


BROKEN_OR_CUT = """els => els.filter(e => {
    if (!e.innerText.trim()) return false;
    if (e.scrollWidth > e.clientWidth + 1) return true;                 // cut
    const walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (const word of node.textContent.split(/\\s+/)) {          // one word on two lines
            const start = node.textContent.indexOf(word);
            if (!word || start < 0) continue;
            const range = document.createRange();
            range.setStart(node, start);
            range.setEnd(node, start + word.length);
            if (new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1) return true;
        }
    }
    return false;
}).map(e => e.innerText.trim())"""


def unreadable_cells(page: DebuggerPage, elem_id: str) -> list[str]:
    """Headers and cells of a table that wrap a word mid-way ("detection_metho/d") or are cut off."""
    page.page.wait_for_selector(f"#{elem_id} [role=columnheader]")
    return page.page.eval_on_selector_all(f"#{elem_id} [role=columnheader], #{elem_id} [role=gridcell]", BROKEN_OR_CUT)


def test_no_table_wraps_a_word_or_cuts_a_cell_at_1400_px(browser, web_url: str) -> None:
    page = DebuggerPage(browser, web_url)
    page.reset(TASK)
    page.run_tool("list_suspicious_dates", '{"limit": 5}')
    assert unreadable_cells(page, "tool-table") == []
    page.tab("Payload")
    page.choose("generator-name", "get_median_filter_rows")
    page.page.click("#generate-rows")
    page.wait_status("get_median_filter_rows ran")
    rows = page.row_count("payload")
    page.page.click("#preview")
    assert f"{rows} row(s) valid" in page.wait_status("preview_submission ran")
    page.page.click("#submit")
    page.wait_status("graded")
    page.page.wait_for_selector("#graded-comparison [role=row][data-index]")
    shot(page, "graded_comparison")
    for elem_id in ("payload", "reward-breakdown", "graded-comparison"):
        assert unreadable_cells(page, elem_id) == [], elem_id
    page.tab("Episode")
    assert unreadable_cells(page, "definitions") == []
    shot(page, "episode")
    page.page.close()


def test_the_tool_help_breaks_no_word_at_1400_px(browser, web_url: str) -> None:
    """The tool help's Markdown table (no grid) keeps each word on one line and each cell whole: a long argument name
    or default is one line, a long description wraps between words."""
    page = DebuggerPage(browser, web_url)
    page.reset(TASK)
    page.tab("Analysis tools")
    for name in ("list_suspicious_dates",):
        page.choose("tool-name", name)
        page.page.wait_for_function(f"document.querySelector('#tool-help').innerText.includes({name!r})")
        broken = page.page.eval_on_selector_all("#tool-help th, #tool-help td", BROKEN_OR_CUT)
        assert broken == [], (name, broken)
    page.page.close()
