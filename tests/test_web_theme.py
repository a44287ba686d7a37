"""The /web theme: OpenEnv's look, with fonts the server itself serves (the browser test checks the live page)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import gradio
import pytest
from fastapi.testclient import TestClient
from openenv.core.env_server import gradio_theme

from metric_tracker_rl.serving.app import build_app
from metric_tracker_rl.serving.debugger.theme import TABLE_CSS, offline_web_theme
from metric_tracker_rl.settings import ServerSettings

GRADIO_FRONTEND = Path(gradio.__file__).parent / "templates" / "frontend"


@pytest.fixture(scope="module")
def web_app() -> Iterator[TestClient]:
    """The app the server builds with its debugger on (in process: the served CSS is what is checked)."""
    yield TestClient(build_app(settings=ServerSettings.load(enable_web_interface=True, debug=False)))


def test_the_page_the_server_mounts_uses_the_offline_theme(web_app: TestClient) -> None:
    """What /web serves, not the module attribute the theme sets: every font the page's theme loads is one the
    server itself serves, none is remote, and the wide-table rules reach the page."""
    theme_css = web_app.get("/web/theme.css")
    assert theme_css.status_code == 200
    urls = re.findall(r"url\(['\"]?([^'\")]+)", theme_css.text)
    fonts = [url for url in urls if not url.startswith("data:")]
    assert fonts and all(url.startswith("static/fonts/") and (GRADIO_FRONTEND / url).is_file() for url in fonts)
    assert "@import" not in theme_css.text  # OpenEnv's own theme imports its fonts from Google Fonts
    assert "IBM Plex Sans" in theme_css.text
    config = web_app.get("/web/config").json()
    assert not [sheet for sheet in config["stylesheets"] if re.match(r"https?://", sheet)]
    assert TABLE_CSS.strip() in config["css"]


def test_every_font_it_names_ships_with_gradio_and_nothing_is_remote() -> None:
    theme, _css = offline_web_theme()
    css = "\n".join(theme._font_css) + theme._get_theme_css()
    font_urls = re.findall(r"url\('([^']+\.woff2)'\)", css)
    assert font_urls and all((GRADIO_FRONTEND / url).is_file() for url in font_urls)
    assert not re.search(r"url\(['\"]?https?:", css)


def test_it_keeps_openenvs_colours_and_sizes() -> None:
    theme, _css = offline_web_theme()
    original = vars(gradio_theme.OPENENV_GRADIO_THEME)
    differing = {
        name for name, value in vars(theme).items() if not name.startswith("_") and original.get(name) != value
    }
    assert differing == {"font", "font_mono"}
