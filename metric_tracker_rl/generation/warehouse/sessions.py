"""Sessions before their events, as the world's traffic and the standing sources draw them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SessionDraw:
    """Sessions before their events: each one's cell, channel (a code of the split's channel values), whether its
    user is new, date, hour, funnel steps reached past the open, user (an index into the users drawn beside) and
    kind (STANDING_KINDS: 0 is the world's own traffic)."""

    cell: np.ndarray
    channel: np.ndarray
    new: np.ndarray
    day: np.ndarray
    hour: np.ndarray
    depth: np.ndarray
    user: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.cell)

    def then(self, other: SessionDraw, users_before: int) -> SessionDraw:
        """These sessions followed by `other`'s, whose users come after `users_before` users."""
        joined = {
            name: np.concatenate([getattr(self, name), getattr(other, name)])
            for name in SessionDraw.__dataclass_fields__
        }
        joined["user"][len(self) :] += users_before
        return SessionDraw(**joined)
