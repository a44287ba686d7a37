"""The identifiers users carry in the export: a pseudonymous id (a random number and the first touch in epoch
seconds, as exports write it), an optional login id and a device id, drawn alike for every kind of user so that
none is told apart by its form."""

from __future__ import annotations

import numpy as np


def draw_identities(
    rng: np.random.Generator, first_touch_s: np.ndarray, logged_in: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(U,) object arrays: pseudonymous ids, login ids (None where logged out) and device ids."""
    count = len(first_touch_s)
    numbers = rng.integers(10**9, 2 * 10**9, count).tolist()
    pseudo = np.array([f"{n}.{t}" for n, t in zip(numbers, first_touch_s.tolist(), strict=True)], dtype=object)
    logins = np.array(
        [
            f"L{n:08d}" if on else None
            for n, on in zip(rng.integers(0, 10**8, count).tolist(), logged_in.tolist(), strict=True)
        ],
        dtype=object,
    )
    devices = np.array([f"{n:016x}" for n in rng.integers(0, 2**62, count).tolist()], dtype=object)
    return pseudo, logins, devices
