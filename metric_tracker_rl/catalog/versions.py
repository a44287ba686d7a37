"""Every tier's versions: the earlier ones kept playable beside the latest (TIERS holds each tier's latest), how a
reset's `version` finds one, and what each published version is: the commit it was published at, what it changed
from the version before it, and the corrections of its texts since (a correction changes no rule: what the version
asks and how it scores stay as published). docs/versions.md renders the notes; tests/test_versions.py holds every
version of every tier to one note here."""

from __future__ import annotations

from dataclasses import dataclass, replace

from metric_tracker_rl.catalog.registry import Registry
from metric_tracker_rl.catalog.tiers import TIERS, AuditMix, Tier


def _check_earlier(tier: Tier) -> None:
    """An earlier version is of a tier TIERS holds, and older than the one TIERS holds (its latest)."""
    latest = TIERS[tier.name]
    if tier.version >= latest.version:
        raise ValueError(f"{tier.version_name} is not earlier than the latest version, {latest.version_name}")


# The earlier versions of the tiers, by `name-vN`: each plays as it was published, beside its tier's latest (TIERS).
EARLIER_VERSIONS: Registry[Tier] = Registry("tier version", (), check=_check_earlier)


def keep_earlier_version(tier: Tier) -> Tier:
    """Keep `tier` playable as an earlier version of its name, under `name-vN`."""
    return EARLIER_VERSIONS.register(tier, tier.version_name)


def _audit_v1() -> Tier:
    """The audit as version 1 asked it: a data defect's row reports no repaired value, and its episodes draw every
    mechanism alike."""
    latest = TIERS["audit"]
    if not isinstance(latest.segmented, AuditMix):
        raise TypeError("the audit's mix is an AuditMix")
    return replace(latest, version=1, segmented=replace(latest.segmented, repaired_values=False, weights=None))


keep_earlier_version(_audit_v1())


def versions_of(name: str) -> dict[int, Tier]:
    """Every playable version of the tier `name`, oldest first (its latest last); an unknown name is an error that
    names the tiers."""
    latest = TIERS[name]
    found = {tier.version: tier for tier in EARLIER_VERSIONS.values() if tier.name == name}
    found[latest.version] = latest
    return dict(sorted(found.items()))


def tier_at(name: str, version: object = None) -> Tier:
    """The tier `name` at `version` (None: its latest). A version the tier does not have is a ValueError that names
    the ones it has."""
    if version is None:
        return TIERS[name]
    versions = versions_of(name)
    if isinstance(version, int) and not isinstance(version, bool) and version in versions:
        return versions[version]
    valid = ", ".join(f"{number}{' (latest)' if tier is TIERS[name] else ''}" for number, tier in versions.items())
    raise ValueError(f"difficulty {name!r} has no version {version!r}; valid: {valid}")


@dataclass(frozen=True)
class VersionNote:
    """One version of one tier, as results cite it (`audit-v1`)."""

    tier: str
    version: int
    published_at: str | None  # the commit whose stored fingerprints define it; None: a draft, not yet published
    changes: str  # what it changed from the tier's version before it (the first: what it is)
    text_corrections: tuple[str, ...] = ()  # each text corrected since it was published, before -> after

    @property
    def name(self) -> str:
        return f"{self.tier}-v{self.version}"

    @property
    def published(self) -> bool:
        """Whether the version is published: its fingerprints then never move (a draft's may, until it is)."""
        return self.published_at is not None


# The commit whose fingerprints first defined every tier's version 1 (the tiers below the audit: published so).
FIRST_FINGERPRINTS = "350419a"
AUDIT_V1_FINGERPRINTS = "646b7e7"  # the commit whose fingerprints define the audit's version 1
VERSION_NOTES: tuple[VersionNote, ...] = (
    *(
        VersionNote(name, 1, FIRST_FINGERPRINTS, "The tier as it was when tiers gained versions.")
        for name in TIERS
        if name != "audit"
    ),
    VersionNote(
        "audit",
        1,
        AUDIT_V1_FINGERPRINTS,
        "The audit's first version: a food-ordering app's raw event export and side tables, its business "
        "incidents and data defects drawn alike from every mechanism its split holds (the eval split's include "
        "some no train episode holds), every expected row of its eval tasks confirmed findable from what a model "
        "reads (lab/docs/audit.md).",
    ),
    VersionNote(
        "audit",
        2,
        None,
        "A draft: a data defect's row also reports repaired_value, the metric's value in its segment on its date "
        "over the events as they would have been recorded without the defect, graded within 5% of it as a quarter "
        "of the row's values credit (not asked where the recorded events cannot tell it); and the episodes draw "
        "their causes in other proportions (more of those a systematic reading finds and a quick one misses, every "
        "one still drawn, none past a quarter of the findings). Their findings' rules and every other rule are "
        "version 1's.",
    ),
)


def note_of(tier: str, version: int) -> VersionNote:
    """The note of a tier's version; a ValueError names the versions that have one."""
    for note in VERSION_NOTES:
        if (note.tier, note.version) == (tier, version):
            return note
    raise ValueError(f"no note for {tier}-v{version}; noted: {', '.join(n.name for n in VERSION_NOTES)}")


def is_published(tier: str, version: int) -> bool:
    """Whether that version of the tier is published (an unnoted one is not)."""
    return any(note.published for note in VERSION_NOTES if (note.tier, note.version) == (tier, version))


def unnoted_versions() -> list[str]:
    """Every playable version of a tier that has no note (none, when the notes are complete)."""
    noted = {(note.tier, note.version) for note in VERSION_NOTES}
    return [f"{name}-v{number}" for name in TIERS for number in versions_of(name) if (name, number) not in noted]
