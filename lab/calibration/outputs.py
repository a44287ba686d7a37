"""Where a calibration writes its results: an untracked file under lab/runs/ (git ignores it) unless told to keep
them (`--keep`: the tracked file in lab/artifacts/ that the pages render) or given a path (`--out`). A run made to
look at a change never overwrites the kept figures by accident."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "lab" / "runs"
KEPT = ROOT / "lab" / "artifacts"


def add_output_flags(parser: argparse.ArgumentParser, name: str) -> None:
    """`--out PATH` or `--keep` for a calibration whose kept results are lab/artifacts/`name`."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None, help=f"write the results here (default: lab/runs/{name})")
    where.add_argument("--keep", action="store_true", help=f"write the kept results, lab/artifacts/{name}")


def output_path(args: argparse.Namespace, name: str) -> Path:
    """The file a run writes: `--out`, else the kept file with `--keep`, else lab/runs/`name`."""
    if args.out is not None:
        return Path(args.out)
    return (KEPT if args.keep else RUNS) / name
