"""The /web page's theme: OpenEnv's, with fonts served by this server so the page loads nothing from outside."""

from __future__ import annotations

import gradio as gr
from openenv.core.env_server import gradio_theme, web_interface

# Bundled with Gradio and served from the page's own static/fonts (OpenEnv 0.10's theme asks Google Fonts instead).
OFFLINE_FONT = (gr.themes.LocalFont("IBM Plex Sans"), "system-ui", "sans-serif")
OFFLINE_FONT_MONO = (gr.themes.LocalFont("IBM Plex Mono"), "ui-monospace", "monospace")


def use_offline_web_theme() -> gr.themes.Base:
    """Give /web OpenEnv's colours and sizes with local fonts. `create_app` takes no theme, and OpenEnv's web
    interface mounts Gradio with its module's OPENENV_GRADIO_THEME, so that module attribute is replaced."""
    theme = gr.themes.Base(font=OFFLINE_FONT, font_mono=OFFLINE_FONT_MONO)
    for name, value in vars(gradio_theme.OPENENV_GRADIO_THEME).items():
        if not name.startswith("_") and name not in {"font", "font_mono"}:
            setattr(theme, name, value)
    web_interface.OPENENV_GRADIO_THEME = theme
    return theme
