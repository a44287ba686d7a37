"""The audit's version 2 draws its mechanisms by weight (catalog/audit_weights.py), version 1 alike: a weighted order
is a permutation whose first name comes up as often as its weight says, an unweighted one is the plain shuffle every
tier drew before, and a mix's weights name every mechanism it draws."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl.catalog.audit_weights import AUDIT_DRAW_WEIGHTS, DRAW_FLOOR, ROW_SHARES, ROWS_PER_PLACEMENT
from metric_tracker_rl.catalog.tiers import AUDIT, AUDIT_DEFECTS, AUDIT_KINDS, AuditMix
from metric_tracker_rl.catalog.versions import tier_at
from metric_tracker_rl.generation.segment_plan import drawn_order

MIX = AUDIT.segmented
assert isinstance(MIX, AuditMix)
NAMES = st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=12, unique=True)


@settings(max_examples=40, deadline=None)
@given(names=NAMES, seed=st.integers(0, 2**32 - 1), data=st.data())
def test_a_drawn_order_is_a_permutation_and_unweighted_the_plain_shuffle(
    names: list[str], seed: int, data: st.DataObject
) -> None:
    weights = {name: data.draw(st.floats(0.01, 10.0)) for name in names}
    weighted = drawn_order(names, np.random.default_rng(seed), weights)
    assert sorted(weighted) == sorted(names)
    plain = [str(name) for name in np.random.default_rng(seed).permutation(names)]
    assert drawn_order(names, np.random.default_rng(seed), None) == plain


def test_the_first_drawn_comes_up_as_often_as_its_weight_says() -> None:
    """Over 4,000 draws among the audit's defects at version 2's weights, each one's share of first places is its
    weight's share, within five standard errors."""
    weights = {name: weight for name, weight in AUDIT_DRAW_WEIGHTS if name in AUDIT_DEFECTS}
    rng, draws = np.random.default_rng(7), 4_000
    firsts = [drawn_order(list(weights), rng, weights)[0] for _ in range(draws)]
    total = sum(weights.values())
    for name, weight in weights.items():
        expected = weight / total
        assert abs(firsts.count(name) / draws - expected) < 5 * (expected * (1 - expected) / draws) ** 0.5 + 1e-3


def test_version_2_weighs_every_mechanism_and_version_1_none() -> None:
    assert MIX.weights == AUDIT_DRAW_WEIGHTS and tier_at("audit", 2) is AUDIT
    first = tier_at("audit", 1).segmented
    assert isinstance(first, AuditMix) and first.weights is None
    assert replace(first, weights=MIX.weights, repaired_values=True) == MIX  # all that version 2 changed in its mix
    assert {name for name, _ in AUDIT_DRAW_WEIGHTS} == set(AUDIT_KINDS) | set(AUDIT_DEFECTS) == set(ROW_SHARES)
    raw = {name: ROW_SHARES[name] / ROWS_PER_PLACEMENT[name] for name in ROW_SHARES}
    floor = DRAW_FLOOR * sum(raw.values()) / len(raw)
    for name, weight in AUDIT_DRAW_WEIGHTS:
        assert weight == pytest.approx(max(raw[name], floor)) and weight > 0
    assert any(raw[name] < floor for name in raw) and any(raw[name] > 2 * floor for name in raw)
    assert max(ROW_SHARES.values()) <= 0.25 and sum(ROW_SHARES.values()) == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize("missing", [AUDIT_KINDS[0], AUDIT_DEFECTS[-1]])
def test_a_mix_refuses_weights_that_leave_a_mechanism_out_or_at_zero(missing: str) -> None:
    others = tuple((name, weight) for name, weight in AUDIT_DRAW_WEIGHTS if name != missing)
    with pytest.raises(ValueError, match=missing):
        replace(MIX, weights=others)
    with pytest.raises(ValueError, match=missing):
        replace(MIX, weights=(*others, (missing, 0.0)))
