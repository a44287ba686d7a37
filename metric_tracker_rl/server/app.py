"""Builds the FastAPI app (OpenEnv HTTP + WebSocket API, web debugger at /web) and runs it."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from metric_tracker_rl.environment import MetricTrackerRlEnvironment

DEFAULT_MAX_CONCURRENT_ENVS = 64
DEFAULT_SESSION_TIMEOUT_S = 900.0
DEBUG_ENV_VAR = "METRIC_TRACKER_DEBUG"
SECRET_ENV_VAR = "METRIC_TRACKER_SECRET"  # held-out mode: mixed into every random stream, never shown


def build_app(environment: type[MetricTrackerRlEnvironment] | None = None) -> FastAPI:
    """Settings are read once, here: MAX_CONCURRENT_ENVS, SESSION_TIMEOUT_S, METRIC_TRACKER_DEBUG,
    ENABLE_WEB_INTERFACE (the debugger at /web; on unless "false"), MAX_SESSIONS_PER_CLIENT and
    UNRESET_SESSION_GRACE_S (see `sessions`); `main` reads METRIC_TRACKER_DRAIN_S (`lifecycle`).
    `environment` replaces the environment class (the benchmark's reference servers use it). Every way of
    starting the server (`uv run server`, `python -m server.app`, `uvicorn server.app:app`, the image) builds
    the app here, so they all agree; only `main` (the first two and the image) drains on SIGTERM.

    The heavy imports live here, not at module level: with `--workers N` every worker process first
    re-imports this module as its `__main__`, and uvicorn kills a worker that does not answer its health
    check within 5 s, which a slow import on a busy machine can miss forever."""
    from openenv.core.env_server.http_server import create_fastapi_app
    from openenv.core.env_server.types import ConcurrencyConfig

    from metric_tracker_rl.environment import environment_factory
    from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState
    from metric_tracker_rl.server.hardening import harden
    from metric_tracker_rl.server.lifecycle import drain_on_stop
    from metric_tracker_rl.server.sessions import limit_sessions
    from metric_tracker_rl.server.task_api import serve_task_api

    max_sessions = int(os.getenv("MAX_CONCURRENT_ENVS", DEFAULT_MAX_CONCURRENT_ENVS))
    idle_timeout_s = float(os.getenv("SESSION_TIMEOUT_S", DEFAULT_SESSION_TIMEOUT_S))
    concurrency = ConcurrencyConfig(max_concurrent_envs=max_sessions, session_timeout=idle_timeout_s)
    environment = environment or environment_factory(
        debug=os.getenv(DEBUG_ENV_VAR, "").strip().lower() in {"1", "true", "yes"},
        held_out_secret=os.getenv(SECRET_ENV_VAR, "").strip())
    if web_interface_enabled():
        # OpenEnv's create_app reads the same variable but defaults to off; the debugger is on by default here.
        from openenv.core.env_server.web_interface import create_web_interface_app

        from metric_tracker_rl.server.debugger import add_favicon, build_debugger
        from metric_tracker_rl.server.web_theme import use_offline_web_theme

        use_offline_web_theme()
        app = create_web_interface_app(environment, MetricTrackerRlAction, MetricTrackerRlObservation,
                                       env_name="metric_tracker_rl", concurrency_config=concurrency,
                                       gradio_builder=build_debugger, show_default_tab=False,
                                       state_cls=MetricTrackerRlState)
        add_favicon(app)
    else:
        app = create_fastapi_app(environment, MetricTrackerRlAction, MetricTrackerRlObservation,
                                 env_name="metric_tracker_rl", concurrency_config=concurrency,
                                 state_cls=MetricTrackerRlState)
    limit_sessions(harden(serve_task_api(app)), max_sessions=max_sessions, idle_timeout_s=idle_timeout_s)
    return drain_on_stop(app)


def web_interface_enabled() -> bool:
    return os.getenv("ENABLE_WEB_INTERFACE", "true").strip().lower() not in ("false", "0", "no", "off")


def websocket_options() -> dict[str, Any]:
    """Uvicorn's WebSocket settings for this server (the benchmark serves its null environment with them too).

    Messages are bounded (see `hardening`). Per-message deflate is off: replies are a few KB on loopback
    or a data-centre network, and compressing each one cost about a fifth of the server's CPU per step."""
    from metric_tracker_rl.server.hardening import MAX_MESSAGE_BYTES

    return {"ws_max_size": MAX_MESSAGE_BYTES, "ws_per_message_deflate": False}


def __getattr__(name: str) -> FastAPI:
    # `uvicorn server.app:app` builds the app on first access, after the environment is final.
    if name == "app":
        app = build_app()
        globals()["app"] = app
        return app
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the metric_tracker_rl environment (the API, and the "
                                     "debugger at /web).", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--host", default=os.getenv("HOST", "0.0.0.0"), help="address to listen on (HOST)")
    parser.add_argument("--port", type=int, default=int(os.getenv("PORT", "8000")), help="port (PORT)")
    parser.add_argument("--workers", type=int, default=int(os.getenv("WORKERS", "1")),
                        help="server processes (WORKERS); each holds its own sessions")
    parser.add_argument("--no-web", action="store_true", help="serve the API without the /web debugger")
    args = parser.parse_args(argv)
    if args.no_web:
        os.environ["ENABLE_WEB_INTERFACE"] = "false"  # read by build_app in every worker process
    problem = port_in_use(args.host, args.port)
    if problem:
        parser.exit(1, f"error: cannot listen on {args.host}:{args.port} ({problem}): stop what holds it, or "
                       f"choose another port with --port N (or PORT=N)\n")
    print(serving_banner(args.host, args.port, web_interface_enabled()), flush=True)

    from metric_tracker_rl.server.serving import serve_with_drain

    serve_with_drain("metric_tracker_rl.server.app:build_app", host=args.host, port=args.port, workers=args.workers,
                     **websocket_options())


def port_in_use(host: str, port: int) -> str | None:
    """Why the server could not bind (host, port), found before anything starts; None when it can. Uvicorn would
    end in an errno traceback instead."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def serving_banner(host: str, port: int, web: bool) -> str:
    """The addresses to open, printed at start (uvicorn names only the bound address, never /web)."""
    shown = "localhost" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{shown}:{port}"
    debugger = f"the debugger at {base}/web/, " if web else ""
    return (f"metric_tracker_rl: serving {debugger}the API at {base} (WebSocket {base.replace('http', 'ws', 1)}/ws, "
            f"schemas {base}/schema, health {base}/health)")


if __name__ == "__main__":
    main()
