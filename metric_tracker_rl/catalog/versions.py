"""What each published version of each tier is: the commit it was published at, what it changed from the version
before it, and the corrections of its texts since (a correction changes no rule: what the version asks and how it
scores stay as published). docs/versions.md renders it; tests/test_versions.py holds every version of every tier to
one note here."""

from __future__ import annotations

from dataclasses import dataclass

from metric_tracker_rl.catalog.tiers import TIERS, versions_of


@dataclass(frozen=True)
class VersionNote:
    """One version of one tier, as results cite it (`audit-v1`)."""

    tier: str
    version: int
    published_at: str  # the commit whose stored fingerprints define it
    changes: str  # what it changed from the tier's version before it (the first: what it is)
    text_corrections: tuple[str, ...] = ()  # each text corrected since it was published, before -> after

    @property
    def name(self) -> str:
        return f"{self.tier}-v{self.version}"


FIRST_PUBLISHED = "the first publication of versions"
VERSION_NOTES: tuple[VersionNote, ...] = tuple(
    VersionNote(name, 1, FIRST_PUBLISHED, "The tier as it was when tiers gained versions.") for name in TIERS
)


def note_of(tier: str, version: int) -> VersionNote:
    """The note of a tier's version; a ValueError names the versions that have one."""
    for note in VERSION_NOTES:
        if (note.tier, note.version) == (tier, version):
            return note
    raise ValueError(f"no note for {tier}-v{version}; noted: {', '.join(n.name for n in VERSION_NOTES)}")


def unnoted_versions() -> list[str]:
    """Every playable version of a tier that has no note (none, when the notes are complete)."""
    noted = {(note.tier, note.version) for note in VERSION_NOTES}
    return [f"{name}-v{number}" for name in TIERS for number in versions_of(name) if (name, number) not in noted]
