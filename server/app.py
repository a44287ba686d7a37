"""Builds the FastAPI app (OpenEnv HTTP + WebSocket API, web debugger at /web) and runs it."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.environment import MetricTrackerRlEnvironment

DEFAULT_MAX_CONCURRENT_ENVS = 64
DEFAULT_SESSION_TIMEOUT_S = 900.0


def build_app(environment: type[MetricTrackerRlEnvironment] | None = None) -> FastAPI:
    """Settings are read once, here: MAX_CONCURRENT_ENVS, SESSION_TIMEOUT_S, METRIC_TRACKER_DEBUG,
    ENABLE_WEB_INTERFACE (the debugger at /web), METRIC_TRACKER_SELF_URL (where the debugger connects).
    `environment` replaces the environment class (the benchmark's reference servers use it).

    The heavy imports live here, not at module level: with `--workers N` every worker process first
    re-imports this module as its `__main__`, and uvicorn kills a worker that does not answer its health
    check within 5 s, which a slow import on a busy machine can miss forever."""
    from openenv.core.env_server.http_server import create_app
    from openenv.core.env_server.types import ConcurrencyConfig

    from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
    from server.debugger import add_favicon, build_debugger
    from server.environment import environment_class
    from server.hardening import harden

    concurrency = ConcurrencyConfig(
        max_concurrent_envs=int(os.getenv("MAX_CONCURRENT_ENVS", DEFAULT_MAX_CONCURRENT_ENVS)),
        session_timeout=float(os.getenv("SESSION_TIMEOUT_S", DEFAULT_SESSION_TIMEOUT_S)),
    )
    app = create_app(environment or environment_class(), MetricTrackerRlAction, MetricTrackerRlObservation,
                     env_name="metric_tracker_rl", concurrency_config=concurrency, gradio_builder=build_debugger,
                     show_default_tab=False)
    add_favicon(app)
    return harden(app)


def websocket_options() -> dict[str, Any]:
    """Uvicorn's WebSocket settings for this server (the benchmark serves its null environment with them too).

    Messages are bounded (see server.hardening). Per-message deflate is off: replies are a few KB on loopback
    or a data-centre network, and compressing each one cost about a fifth of the server's CPU per step."""
    from server.hardening import MAX_MESSAGE_BYTES

    return {"ws_max_size": MAX_MESSAGE_BYTES, "ws_per_message_deflate": False}


def __getattr__(name: str) -> FastAPI:
    # `uvicorn server.app:app` builds the app on first access, after the environment is final.
    if name == "app":
        app = build_app()
        globals()["app"] = app
        return app
    raise AttributeError(name)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the metric_tracker_rl environment.")
    parser.add_argument("--host", default=os.getenv("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.getenv("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.getenv("WORKERS", "1")))
    parser.add_argument("--no-web", action="store_true", help="serve the API without the /web debugger")
    args = parser.parse_args()
    from server.debugger import SELF_URL_ENV_VAR

    os.environ["ENABLE_WEB_INTERFACE"] = "false" if args.no_web else os.getenv("ENABLE_WEB_INTERFACE", "true")
    # The debugger drives episodes over this server's own WebSocket API; a wildcard bind is reached on loopback.
    own_host = "127.0.0.1" if args.host in ("", "0.0.0.0", "::") else args.host
    os.environ.setdefault(SELF_URL_ENV_VAR, f"http://{own_host}:{args.port}")

    import uvicorn

    uvicorn.run("server.app:build_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                **websocket_options())


if __name__ == "__main__":
    main()
