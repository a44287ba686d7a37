"""The warehouse load benchmark's and the held-work attacks' tables on the lab's pages are their kept runs', with the
old code's figures beside the new code's: the before column measured on a clean checkout, the after column filled
by the same command run on the new code, neither overwriting the other."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from lab import docs_blocks
from lab.speed import attack_held_work, attack_held_work_table, warehouse_load
from lab.speed.loopback_server import read_artifact, spread, write_column
from lab.tests.helpers import ROOT


def _block(name: str) -> str | None:
    block = next(block for block in docs_blocks.BLOCKS if block.name == name)
    return docs_blocks.shown((ROOT / block.doc).read_text(encoding="utf-8"), name)


def _before_cells(table: str) -> list[str]:
    return [line.split(" | ")[-2] for line in table.splitlines()[2:]]


def test_the_warehouse_load_table_is_the_kept_runs() -> None:
    kept = read_artifact(warehouse_load.ARTIFACT)
    before = kept["before"]
    assert before is not None and not before["dirty"], "the before column is measured on a clean checkout"
    assert _block("warehouse-load") == warehouse_load.table(kept)
    cells = _before_cells(warehouse_load.table(kept))
    assert f"{before['episodes']['lost']} of {before['episodes']['started']}" in cells
    assert "{p50:.0f} / {p95:.0f} / {max:.0f} ms".format(**before["statement_cpu_ms"]) in cells
    assert before["statement_cpu_ms"]["n"] == before["statements"]
    assert "—" not in cells


def test_the_held_work_table_is_the_kept_runs_with_every_row_before() -> None:
    kept = read_artifact(attack_held_work.ARTIFACT)
    before = kept["before"]
    assert before is not None and not before["dirty"]
    assert set(before["rows"]) == set(attack_held_work.ROW_NAMES)
    assert _block("attack-held-work") == attack_held_work_table.table(kept)
    cells = _before_cells(attack_held_work_table.table(kept))
    assert "—" not in cells
    memory = before["rows"]["memory"]
    assert f"{memory['before_mb']:,.0f} → {memory['peak_mb']:,.0f} → {memory['after_mb']:,.0f} MB" in cells


def test_a_run_on_the_new_code_fills_the_after_column_and_keeps_the_before(tmp_path: Path) -> None:
    for module, render in ((warehouse_load, warehouse_load.table), (attack_held_work, attack_held_work_table.table)):
        kept = read_artifact(module.ARTIFACT)
        artifact = tmp_path / module.ARTIFACT.name
        write_column(artifact, "before", kept["before"], "the command")
        empty = render(read_artifact(artifact))
        assert all(line.endswith("| — |") for line in empty.splitlines()[2:]), empty
        after = copy.deepcopy(kept["before"])
        after["code_commit"] = "abc1234"
        write_column(artifact, "after", after, "the command")
        both = read_artifact(artifact)
        assert both["before"] == kept["before"] and both["after"]["code_commit"] == "abc1234"
        table = render(both)
        assert "abc1234" in table and "—" not in table
        assert json.loads(artifact.read_text(encoding="utf-8"))["command"] == "the command"


@given(st.lists(st.floats(min_value=0, max_value=1e4), min_size=1, max_size=200))
def test_a_spread_is_ordered_and_ends_at_the_largest_sample(samples: list[float]) -> None:
    figures = spread(samples, (50, 95, 99), digits=6)
    assert figures["n"] == len(samples)
    assert figures["p50"] <= figures["p95"] <= figures["p99"] <= figures["max"] + 1e-6
    assert figures["max"] == round(max(samples), 6)
