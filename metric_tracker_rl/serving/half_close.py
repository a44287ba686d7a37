"""An HTTP request whose client half-closes its connection (it has sent everything and waits for the answer) is
answered, within HALF_CLOSE_GRACE_S.

Uvicorn takes the end of a client's sending for the end of its connection: the transport is closed, the app hears a
disconnect, and a tool call in flight is given up (`step_bound`) with nobody to answer. TCP cannot tell a client
that half-closed from one that hung up until the server writes, so a request in flight when its client stops
sending goes on for HALF_CLOSE_GRACE_S (a tool call's cheap statement answers well within it) and only then counts as
hung up: its statement is stopped as before, so a client that leaves holds a worker at most that long.
`HalfClosingHttpProtocol` is the HTTP protocol the server gives uvicorn (`app.websocket_options`).
"""

from __future__ import annotations

from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # httptools not installed: uvicorn's pure-Python protocol
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]

HALF_CLOSE_GRACE_S = 1.0


class HalfClosingHttpProtocol(_Base):
    """Uvicorn's HTTP protocol, whose request in flight outlives its client's half-close by HALF_CLOSE_GRACE_S."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sending_ended = False

    def eof_received(self) -> bool | None:  # type: ignore[override]  # True keeps the transport open
        """The client sent its last byte: a request in flight is still answered (the connection kept open for
        writing) unless the grace passes first; an idle connection closes as before."""
        cycle = getattr(self, "cycle", None)
        if cycle is None or cycle.response_complete:
            return None
        self._sending_ended = True
        self.loop.call_later(HALF_CLOSE_GRACE_S, self._gave_up_waiting)
        return True

    def _gave_up_waiting(self) -> None:
        cycle = getattr(self, "cycle", None)
        if cycle is not None and not cycle.response_complete and not self.transport.is_closing():
            self.transport.close()  # the app hears a disconnect, as for a client that hung up

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._sending_ended and not self.transport.is_closing():
            self.transport.close()  # nothing more can come from a client that stopped sending
