"""`get_rate_spike_from_median_rows`: the robust-z scan of conversion rates above the threshold, typed as rate
spikes (its family's detection method)."""

from __future__ import annotations

from metric_tracker_rl.analysis_tools.arguments import RateThreshold
from metric_tracker_rl.analysis_tools.generators import DIRECTIONAL_SCAN, register_deviation_generator

register_deviation_generator(
    "get_rate_spike_from_median_rows",
    "Candidate rate-spike rows: conversion rates whose robust z-score is above threshold_multiplier.",
    RateThreshold,
    1,
    kept_for=DIRECTIONAL_SCAN,
)
