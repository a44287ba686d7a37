"""The /web theme: OpenEnv's look, with fonts the server itself serves (the browser test checks the live page)."""

from __future__ import annotations

import re
from pathlib import Path

import gradio
from openenv.core.env_server import gradio_theme, web_interface

from metric_tracker_rl.server.web_theme import use_offline_web_theme

GRADIO_FRONTEND = Path(gradio.__file__).parent / "templates" / "frontend"


def test_the_offline_theme_replaces_the_one_openenv_mounts() -> None:
    theme = use_offline_web_theme()
    assert web_interface.OPENENV_GRADIO_THEME is theme  # that the page then loads nothing remote, the browser test sees


def test_every_font_it_names_ships_with_gradio_and_nothing_is_remote() -> None:
    theme = use_offline_web_theme()
    css = "\n".join(theme._font_css) + theme._get_theme_css()
    font_urls = re.findall(r"url\('([^']+\.woff2)'\)", css)
    assert font_urls and all((GRADIO_FRONTEND / url).is_file() for url in font_urls)
    assert not re.search(r"url\(['\"]?https?:", css)


def test_it_keeps_openenvs_colours_and_sizes() -> None:
    theme = use_offline_web_theme()
    original = vars(gradio_theme.OPENENV_GRADIO_THEME)
    differing = {name for name, value in vars(theme).items()
                 if not name.startswith("_") and original.get(name) != value}
    assert differing == {"font", "font_mono"}
