"""The one place random generators are made.

Every stream is derived from (episode key, stream name[, index]) with a stable hash, so a stream never depends
on the order other streams were drawn in, on PYTHONHASHSEED, or on the clock.

An episode key is the seed alone, or the seed with a server-side secret (held-out mode). The secret's digest
is mixed into every stream, so the same config gives the same episode on every replica that shares the secret,
while the public package cannot rebuild that episode from its seed.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

import numpy as np

MAX_SEED = 2**63 - 1


def validate_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    return int(seed)


def secret_words(secret: str) -> tuple[int, ...]:
    """The secret as entropy words (SHA-256 digest); no words without a secret, so public keys stay as they were."""
    if not secret:
        return ()
    digest = hashlib.sha256(secret.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, len(digest), 4))


@dataclass(frozen=True)
class EpisodeKey:
    """What every random stream of an episode derives from. The secret's words never leave the server."""

    seed: int
    secret: tuple[int, ...] = ()

    @classmethod
    def of(cls, seed: int, secret: str = "") -> EpisodeKey:
        return cls(validate_seed(seed), secret_words(secret))

    def __repr__(self) -> str:  # never print the secret's digest
        return f"EpisodeKey(seed={self.seed}, held_out={bool(self.secret)})"


def derive_rng(key: EpisodeKey, stream: str, index: int = 0) -> np.random.Generator:
    """A generator for one named sub-stream of an episode."""
    entropy = [key.seed, zlib.crc32(stream.encode("utf-8")), index, *key.secret]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))
