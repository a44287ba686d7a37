"""Builds the FastAPI app (OpenEnv HTTP + WebSocket API, web debugger at /web) and runs it."""

from __future__ import annotations

import argparse
import functools
import os
from typing import TYPE_CHECKING, Any

from metric_tracker_rl.settings import ServerSettings, SettingsError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

APP_FACTORY = "metric_tracker_rl.serving.app:build_app"
ENV_NAME = "metric_tracker_rl"


def build_app(
    environment: type[MetricTrackerRlEnvironment] | None = None, settings: ServerSettings | None = None
) -> FastAPI:
    """`settings` default to `ServerSettings.load()`: read once per process, here or in `main` (docs/settings.md).
    `environment` replaces the environment class (the benchmark's reference servers use it). Every way of
    starting the server (`uv run server`, `python -m server.app`, `uvicorn server.app:app`, the image) builds
    the app here, so they all agree; only `main` (the first two and the image) drains on SIGTERM.

    The heavy imports live here, not at module level: with `--workers N` every worker process first
    re-imports this module as its `__main__`, and uvicorn kills a worker that does not answer its health
    check within 5 s, which a slow import on a busy machine can miss forever."""
    from openenv.core.env_server.http_server import create_fastapi_app
    from openenv.core.env_server.types import ConcurrencyConfig

    from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState
    from metric_tracker_rl.serving.client_address import name_clients
    from metric_tracker_rl.serving.environment import environment_factory
    from metric_tracker_rl.serving.hardening import harden
    from metric_tracker_rl.serving.lifecycle import drain_on_stop
    from metric_tracker_rl.serving.loop_lag import watch_when_asked
    from metric_tracker_rl.serving.sessions import limit_sessions
    from metric_tracker_rl.serving.startup_heap import freeze_on_startup
    from metric_tracker_rl.serving.step_bound import configure as configure_step_bound
    from metric_tracker_rl.serving.task_api import serve_task_api

    settings = settings or ServerSettings.load()
    configure_step_bound(settings.step_timeout_s)
    concurrency = ConcurrencyConfig(
        max_concurrent_envs=settings.max_concurrent_envs, session_timeout=settings.session_timeout_s
    )
    environment = environment or environment_factory(debug=settings.debug, held_out_secret=settings.held_out_secret)
    app = create_fastapi_app(
        environment,
        MetricTrackerRlAction,
        MetricTrackerRlObservation,
        env_name=ENV_NAME,
        concurrency_config=concurrency,
        state_cls=MetricTrackerRlState,
    )
    if settings.enable_web_interface:
        # OpenEnv's create_app reads the same variable but defaults to off; the debugger is on by default here.
        # It is mounted on its own, not through OpenEnv's web interface, which shares one environment (debugger.mount).
        from metric_tracker_rl.serving.debugger.mount import mount_debugger

        mount_debugger(app, ENV_NAME, settings.self_url)
    harden(limit_sessions(name_clients(serve_task_api(app), settings.sql_workers), settings))
    return drain_on_stop(watch_when_asked(freeze_on_startup(app)))


def websocket_options() -> dict[str, Any]:
    """Uvicorn's WebSocket settings for this server, and its HTTP protocol (the benchmark serves its null
    environment with them too).

    Messages are bounded (see `hardening`), and so are the frames a client began and has not finished
    (`unfinished_frames`). Per-message deflate is off: replies are a few KB on loopback or a data-centre network, and
    compressing each one cost about a fifth of the server's CPU per step. A request whose client half-closes is
    answered (`half_close`)."""
    from metric_tracker_rl.serving.hardening import MAX_MESSAGE_BYTES

    return {
        "ws_max_size": MAX_MESSAGE_BYTES,
        "ws_per_message_deflate": False,
        "ws": "metric_tracker_rl.serving.unfinished_frames:BoundedWebSocketProtocol",
        "http": "metric_tracker_rl.serving.half_close:HalfClosingHttpProtocol",
    }


def __getattr__(name: str) -> FastAPI:
    # `uvicorn server.app:app` builds the app on first access, after the environment is final.
    if name == "app":
        app = build_app()
        globals()["app"] = app
        return app
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Serve the metric_tracker_rl environment (the API, and the "
        "debugger at /web). Settings: docs/settings.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    try:
        environment_settings = ServerSettings.load()
    except SettingsError as exc:
        parser.exit(2, f"error: {exc}\n")
    parser.add_argument("--host", default=environment_settings.host, help="address to listen on (HOST)")
    parser.add_argument("--port", type=int, default=environment_settings.port, help="port (PORT)")
    parser.add_argument(
        "--workers",
        type=int,
        default=environment_settings.workers,
        help="server processes (WORKERS); each holds its own sessions",
    )
    parser.add_argument("--no-web", action="store_true", help="serve the API without the /web debugger")
    parser.add_argument(
        "--log-level",
        default=environment_settings.log_level,
        type=str.lower,
        choices=("critical", "error", "warning", "info", "debug"),
        help="log level (LOG_LEVEL); successful /health and /ready probes are never logged",
    )
    args = parser.parse_args(argv)
    overrides = {"host": args.host, "port": args.port, "workers": args.workers, "log_level": args.log_level}
    if args.no_web:
        overrides["enable_web_interface"] = False
    try:
        settings = ServerSettings.load(**overrides)
    except SettingsError as exc:
        parser.exit(2, f"error: {exc}\n")
    problem = port_in_use(settings.host, settings.port)
    if problem:
        parser.exit(
            1,
            f"error: cannot listen on {settings.host}:{settings.port} ({problem}): stop what holds it, "
            f"or choose another port with --port N (or PORT=N)\n",
        )
    print(serving_banner(settings.host, settings.port, settings.enable_web_interface), flush=True)

    from metric_tracker_rl.serving.process import serve_with_drain

    if settings.workers > 1:
        if args.no_web:  # each worker process builds its app from its own environment, inherited from here
            os.environ["ENABLE_WEB_INTERFACE"] = "false"
        serve_with_drain(APP_FACTORY, settings, **websocket_options())
    else:
        serve_with_drain(functools.partial(build_app, settings=settings), settings, **websocket_options())


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
    return (
        f"metric_tracker_rl: serving {debugger}the API at {base} (WebSocket {base.replace('http', 'ws', 1)}/ws, "
        f"schemas {base}/schema, health {base}/health)"
    )


if __name__ == "__main__":
    main()
