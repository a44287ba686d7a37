"""The real server app, except that a closed session's place comes back a moment late, as on a busy server: the
client sees its socket closed at once, while the server counts the session against its address a little longer.

    python tests/late_release_server.py PORT

The delay is `RELEASE_DELAY_S`, from the moment the server would free the place."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RELEASE_DELAY_S = 1.0


class LateReleasedSessions(set):  # type: ignore[type-arg]
    """`SessionLimits.sessions`, whose removals take effect RELEASE_DELAY_S late."""

    def discard(self, session: Any) -> None:
        asyncio.get_running_loop().call_later(RELEASE_DELAY_S, set.discard, self, session)


def main() -> None:
    import uvicorn

    from metric_tracker_rl.serving import sessions
    from metric_tracker_rl.serving.app import build_app, websocket_options

    original_init = sessions.SessionLimits.__init__

    def late_init(self: sessions.SessionLimits, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.sessions = LateReleasedSessions()

    sessions.SessionLimits.__init__ = late_init  # type: ignore[method-assign]
    uvicorn.run(build_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", **websocket_options())


if __name__ == "__main__":
    main()
