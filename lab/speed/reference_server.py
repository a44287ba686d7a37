"""The command line of the benchmark's reference servers: `python -m lab.speed.<module> --port N --no-web`."""

from __future__ import annotations

import argparse
import os

from metric_tracker_rl.serving.app import websocket_options


def serve_reference(factory: str, description: str, default_port: int) -> None:
    """Serve the app that `factory` ("module:function") builds, with the real server's uvicorn WebSocket settings,
    so that a reference differs from the real server only in its environment."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--no-web", action="store_true", help="serve the API without the /web debugger")
    args = parser.parse_args()
    os.environ["ENABLE_WEB_INTERFACE"] = "false" if args.no_web else os.getenv("ENABLE_WEB_INTERFACE", "true")

    import uvicorn

    uvicorn.run(factory, factory=True, host=args.host, port=args.port, **websocket_options())
