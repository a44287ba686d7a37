"""The one place random generators are made.

Every stream is derived from (episode seed, stream name[, index]) with a stable hash, so a stream never
depends on the order other streams were drawn in, on PYTHONHASHSEED, or on the clock.
"""

from __future__ import annotations

import zlib

import numpy as np

MAX_SEED = 2**63 - 1


def validate_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    return int(seed)


def derive_rng(seed: int, stream: str, index: int = 0) -> np.random.Generator:
    """A generator for one named sub-stream of an episode."""
    entropy = [validate_seed(seed), zlib.crc32(stream.encode("utf-8")), index]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))
