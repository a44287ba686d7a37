"""The one place random generators are made.

Every stream is derived from (episode key, stream name[, index]) with a stable hash, so a stream never depends
on the order other streams were drawn in, on PYTHONHASHSEED, or on the clock.

An episode key is the seed alone, or the seed with a server-side secret (held-out mode). The secret's digest
is mixed into every stream, so the same config gives the same episode on every replica that shares the secret,
while the public package cannot rebuild that episode from its seed.

A stream's generator state is a keyed BLAKE2b digest of (stream name, index) under the episode key. That is
about twenty times cheaper than building a `SeedSequence` per stream, which matters because a reset makes a
dozen streams, and a cryptographic hash gives independent, well-mixed states for any pair of streams.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.random.bit_generator import ISeedSequence

MAX_SEED = 2**63 - 1
# Domain separation for the stream digests (BLAKE2b's personalisation string, at most 16 bytes).
STREAM_PERSON = b"mtrl-stream-v2"


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
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, len(digest), 4))


@dataclass(frozen=True)
class EpisodeKey:
    """What every random stream of an episode derives from. The secret's words never leave the server."""

    seed: int
    secret: tuple[int, ...] = ()
    # Which draw of the episode this is: 0, the episode as its seed gives it; a later one, the same episode drawn
    # again with every stream changed (a tier whose world must meet a condition its draw may miss draws again).
    draw: int = 0
    # The seed, the secret's words and a later draw's number as bytes: the BLAKE2b key of every stream digest (at
    # most 44 bytes; their lengths tell the three apart). Draw 0 adds none, so every episode's streams stay as they
    # were before draws existed.
    hash_key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.draw < 2**32:
            raise ValueError(f"an episode's draw is in [0, 2**32), got {self.draw}")
        words = b"".join(word.to_bytes(4, "little") for word in self.secret)
        again = self.draw.to_bytes(4, "little") if self.draw else b""
        object.__setattr__(self, "hash_key", self.seed.to_bytes(8, "little") + words + again)

    @classmethod
    def of(cls, seed: int, secret: str = "") -> EpisodeKey:
        return cls(validate_seed(seed), secret_words(secret))

    def __repr__(self) -> str:  # never print the secret's digest
        again = f", draw={self.draw}" if self.draw else ""
        return f"EpisodeKey(seed={self.seed}, held_out={bool(self.secret)}{again})"


# The digest's words are read little-endian on every platform; the two word types bit generators ask for are
# looked up rather than built on every call (a reset makes a couple of dozen streams).
_LITTLE_ENDIAN_WORDS: dict[object, np.dtype[Any]] = {np.uint32: np.dtype("<u4"), np.uint64: np.dtype("<u8")}


class _DigestSeed(ISeedSequence):
    """Hands a bit generator the words of one stream digest (little-endian on every platform)."""

    __slots__ = ("_digest",)

    def __init__(self, digest: bytes) -> None:
        self._digest = digest

    def generate_state(self, n_words: int, dtype: npt.DTypeLike = np.uint32) -> npt.NDArray[np.uint32 | np.uint64]:
        little = _LITTLE_ENDIAN_WORDS.get(dtype)
        if little is None:
            little = np.dtype(dtype).newbyteorder("<")
        if n_words * little.itemsize > len(self._digest):
            raise ValueError(f"a stream digest holds {len(self._digest)} bytes, {n_words} {little} words requested")
        words = np.frombuffer(self._digest, dtype=little, count=n_words)  # read-only: bit generators only read them
        # Bit generators read the words' memory as native integers: convert on a big-endian machine.
        return words if little.isnative else words.astype(little.newbyteorder("="))


def stream_digest(key: EpisodeKey, stream: str, index: int = 0) -> bytes:
    """32 bytes that fix one named sub-stream of an episode: BLAKE2b keyed with the seed and the secret."""
    message = index.to_bytes(8, "little") + stream.encode("utf-8")
    return hashlib.blake2b(message, digest_size=32, key=key.hash_key, person=STREAM_PERSON).digest()


def derive_rng(key: EpisodeKey, stream: str, index: int = 0) -> np.random.Generator:
    """A generator for one named sub-stream of an episode (PCG64 whose 256-bit state is the stream digest)."""
    # numpy's stubs name SeedSequence only; a bit generator takes any ISeedSequence.
    seed = _DigestSeed(stream_digest(key, stream, index))
    return np.random.Generator(np.random.PCG64(seed))  # type: ignore[arg-type]
