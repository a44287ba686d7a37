"""The dimensions a segmented tier may split traffic along (tiers.py names them by the keys of DIMENSIONS): each
one's report field, its values, each value's share of traffic and its conversion profile. Public, as the whole
segmented world is (the brief states the values and the profiles); the generator draws traffic from the shares and
profiles, and the overlap credit's examples weigh segments by the shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PLATFORMS: tuple[str, ...] = ("ios", "android", "web")
COUNTRIES: tuple[str, ...] = ("US", "GB", "DE", "BR", "IN")  # frontier's five: the reset budget pays per cell

# Shares of traffic (they sum to 1 per dimension) and per-step conversion factors (menu, cart, order, payment).
PLATFORM_SHARE = {"ios": 0.36, "android": 0.44, "web": 0.20}
COUNTRY_SHARE = {"US": 0.32, "GB": 0.16, "DE": 0.16, "BR": 0.18, "IN": 0.18}
PLATFORM_RATE_FACTORS = {
    "ios": (1.04, 1.05, 1.03, 1.01),
    "android": (1.0, 0.97, 0.97, 0.99),
    "web": (0.9, 0.84, 0.92, 0.98),
}
COUNTRY_RATE_FACTORS = {
    "US": (1.03, 1.04, 1.02, 1.0),
    "GB": (1.02, 1.02, 1.01, 1.0),
    "DE": (1.0, 1.01, 1.0, 1.0),
    "BR": (0.95, 0.9, 0.95, 0.97),
    "IN": (0.92, 0.85, 0.93, 0.96),
}
# deep's eight countries: the same five plus three, with shares that sum to 1 over eight.
WIDE_COUNTRY_SHARE = {"US": 0.26, "GB": 0.12, "DE": 0.11, "FR": 0.09, "BR": 0.13, "IN": 0.15, "JP": 0.07, "MX": 0.07}
WIDE_COUNTRY_RATE_FACTORS = {
    **COUNTRY_RATE_FACTORS,
    "FR": (1.01, 1.0, 1.0, 1.0),
    "JP": (1.02, 1.03, 1.02, 1.0),
    "MX": (0.94, 0.9, 0.94, 0.97),
}
# Acquisition channel: paid social brings low-intent traffic (far fewer reach the cart); referrals convert best.
CHANNEL_SHARE = {"organic": 0.45, "paid_search": 0.25, "paid_social": 0.18, "referral": 0.12}
CHANNEL_RATE_FACTORS = {
    "organic": (1.04, 1.05, 1.03, 1.0),
    "paid_search": (1.02, 1.03, 1.02, 1.0),
    "paid_social": (0.86, 0.74, 0.9, 0.98),
    "referral": (1.07, 1.1, 1.05, 1.0),
}
# User type: new users convert lower at every step, most at the cart.
USER_TYPE_SHARE = {"new": 0.35, "returning": 0.65}
USER_TYPE_RATE_FACTORS = {"new": (0.9, 0.8, 0.9, 0.97), "returning": (1.05, 1.08, 1.04, 1.0)}


@dataclass(frozen=True)
class Dimension:
    """A dimension traffic splits along: the report field it fills, its values, each value's share of traffic
    and its conversion profile (factors on the four step rates: menu, cart, order, payment). `hourly`: part of
    the cell grain (hourly counts); otherwise daily counts only. app_version has neither shares nor profiles: its
    values and shares come from each episode's releases."""

    field: str
    values: tuple[str, ...]
    share: Mapping[str, float]
    rate_factors: Mapping[str, tuple[float, float, float, float]]
    hourly: bool
    profile: str  # public: how its values differ, in a sentence

    def __post_init__(self) -> None:
        if self.share and (set(self.share) != set(self.values) or abs(sum(self.share.values()) - 1.0) > 1e-9):
            raise ValueError(f"{self.field}: shares must cover {self.values} and sum to 1")
        if set(self.rate_factors) != set(self.share):
            raise ValueError(f"{self.field}: a conversion profile for every value with a share")


# Every dimension a tier may name (tiers.py names them by these keys); "country" and "country_wide" fill the same
# field with frontier's five countries and deep's eight.
DIMENSIONS: dict[str, Dimension] = {
    "platform": Dimension(
        "platform",
        PLATFORMS,
        PLATFORM_SHARE,
        PLATFORM_RATE_FACTORS,
        hourly=True,
        profile="web converts lower than the apps",
    ),
    "country": Dimension(
        "country",
        COUNTRIES,
        COUNTRY_SHARE,
        COUNTRY_RATE_FACTORS,
        hourly=True,
        profile="BR and IN convert lower than the rest",
    ),
    "country_wide": Dimension(
        "country",
        tuple(WIDE_COUNTRY_SHARE),
        WIDE_COUNTRY_SHARE,
        WIDE_COUNTRY_RATE_FACTORS,
        hourly=True,
        profile="BR, IN and MX convert lower than the rest",
    ),
    "app_version": Dimension(
        "app_version", (), {}, {}, hourly=True, profile="a release takes its platform's users as it rolls out"
    ),
    "channel": Dimension(
        "channel",
        tuple(CHANNEL_SHARE),
        CHANNEL_SHARE,
        CHANNEL_RATE_FACTORS,
        hourly=False,
        profile="paid_social brings low-intent traffic that converts far lower, most at the cart; "
        "referral converts best",
    ),
    "user_type": Dimension(
        "user_type",
        tuple(USER_TYPE_SHARE),
        USER_TYPE_SHARE,
        USER_TYPE_RATE_FACTORS,
        hourly=False,
        profile="new users convert lower than returning ones at every step",
    ),
}
