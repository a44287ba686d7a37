"""The real server app behind an ASGI wrapper that counts open WebSocket sessions (for the concurrency test).

    python tests/session_counting_server.py PORT

GET /test/sessions answers {"active": n, "peak": n, "opened": n}; everything else goes to the app unchanged."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class SessionCounter:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.active = self.peak = self.opened = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/test/sessions":
            body = json.dumps({"active": self.active, "peak": self.peak, "opened": self.opened}).encode()
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        self.active += 1
        self.opened += 1
        self.peak = max(self.peak, self.active)
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


def main() -> None:
    import uvicorn

    from metric_tracker_rl.serving.app import build_app, websocket_options

    uvicorn.run(
        SessionCounter(build_app()), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", **websocket_options()
    )


if __name__ == "__main__":
    main()
