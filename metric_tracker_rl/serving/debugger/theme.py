"""The /web page's theme: OpenEnv's, with fonts served by this server so the page loads nothing from outside."""

from __future__ import annotations

import gradio as gr

from metric_tracker_rl.compat.openenv import openenv_web_theme

# Bundled with Gradio and served from the page's own static/fonts (OpenEnv 0.10's theme asks Google Fonts instead).
OFFLINE_FONT = (gr.themes.LocalFont("IBM Plex Sans"), "system-ui", "sans-serif")
OFFLINE_FONT_MONO = (gr.themes.LocalFont("IBM Plex Mono"), "ui-monospace", "monospace")


# OpenEnv's page is 1120 px wide at most, too narrow for a nine-column report; and Gradio's tables break a word
# anywhere ("detection_metho/d"). The page takes the window's width, and table text breaks only between words, so
# every column is as wide as its longest value (a wide table scrolls sideways, its key columns pinned). The tool
# help's Markdown table is no grid: its cells break only between words too, its short columns (argument, type,
# required, default) on one line, and it scrolls sideways where a description cannot fit.
TABLE_CSS = """
.gradio-container { max-width: 100% !important; padding-left: 16px !important; padding-right: 16px !important; }
[role=grid] [role=columnheader], [role=grid] [role=columnheader] *, [role=grid] [role=gridcell],
[role=grid] [role=gridcell] *, #tool-help th, #tool-help th *, #tool-help td, #tool-help td * {
    word-break: keep-all !important; overflow-wrap: normal !important; hyphens: none !important;
}
#tool-help table { display: block; overflow-x: auto; max-width: 100%; }
#tool-help th, #tool-help td:nth-child(-n+4) { white-space: nowrap !important; }
"""


def offline_web_theme() -> tuple[gr.themes.Base, str]:
    """(theme, CSS) for /web: OpenEnv's colours and sizes with local fonts, and OpenEnv's CSS with the wide-table
    rules."""
    openenv_theme, openenv_css = openenv_web_theme()
    theme = gr.themes.Base(font=OFFLINE_FONT, font_mono=OFFLINE_FONT_MONO)
    for name, value in vars(openenv_theme).items():
        if not name.startswith("_") and name not in {"font", "font_mono"}:
            setattr(theme, name, value)
    return theme, openenv_css + TABLE_CSS
