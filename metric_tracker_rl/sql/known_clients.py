"""Which clients a server's turns have served before: the SQL workers' turns (`fair_gate`) and the episode builds'
(`serving.reset_turns`) each keep one.

Addresses are free to a stranger, so a client's standing is earned by time, not asked for: a client is known once
its first turn is KNOWN_AFTER_S old (a fresh address that primes itself with one cheap turn is still a newcomer
when its expensive one follows). A client is forgotten once its last turn ended `forget_after_s` ago, and at most
`most` clients are remembered (beyond that, those first served latest are forgotten), so the table stays as small
as the clients seen lately, and however many fresh addresses pass, the clients known longest stay known.
"""

from __future__ import annotations

import time
from collections.abc import Callable

KNOWN_AFTER_S = 5.0
MOST_REMEMBERED = 4096


class KnownClients:
    """When each remembered client's first turn began and its last one ended (see the module docstring)."""

    def __init__(
        self, forget_after_s: float, clock: Callable[[], float] = time.monotonic, most: int = MOST_REMEMBERED
    ) -> None:
        self.forget_after_s = forget_after_s
        self.clock = clock
        self.most = most
        self.first_seen: dict[str, float] = {}  # client -> when its first turn began
        self.last_seen: dict[str, float] = {}  # client -> when its last turn began or ended, the latest last

    def served(self, client: str, began: float | None = None) -> None:
        """A turn of `client`'s began (at `began`, else now): it is seen now, so not forgotten while it holds one."""
        self.first_seen.setdefault(client, self.clock() if began is None else began)
        self.left(client)

    def left(self, client: str) -> None:
        """A turn of `client`'s ended (or began)."""
        self.last_seen.pop(client, None)
        self.last_seen[client] = self.clock()

    def known(self, client: str) -> bool:
        first = self.first_seen.get(client)
        return first is not None and first <= self.clock() - KNOWN_AFTER_S

    def forget(self, busy: Callable[[str], bool]) -> None:
        """Forget the clients whose last turn ended `forget_after_s` ago, then those first served latest beyond
        `most`, except those `busy` (holding or waiting for a turn)."""
        since = self.clock() - self.forget_after_s
        stale = [name for name, seen in self.last_seen.items() if seen <= since]
        beyond = list(self.first_seen)[self.most :] if len(self.first_seen) > self.most else []
        for name in [*stale, *beyond]:
            if not busy(name):
                self.last_seen.pop(name, None)
                self.first_seen.pop(name, None)
