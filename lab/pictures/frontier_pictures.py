"""Regenerate docs/images/frontier_*.svg: for each frontier incident kind and the benign mix shift, the aggregate's
daily series beside the series of the segment that carries the event, the event's date marked.

    uv run python -m lab.pictures.frontier_pictures

Each picture comes from the first seed from PICTURE_SEED_BASE whose episode holds that kind (deterministic);
lab/tests/test_frontier_pictures.py checks that the kept pictures are today's.
"""

from __future__ import annotations

import html
from pathlib import Path

from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation.segmented import build_world
from metric_tracker_rl.serving.debugger.charts import PANEL_HEIGHT, PANEL_WIDTH, Mark, line_panel_svg
from metric_tracker_rl.world.daily_panel import build_panel
from metric_tracker_rl.world.segments import Segment

OUTPUT = Path("docs/images")
PICTURE_SEED_BASE = 50_000
MIX_METRIC = "app_open_to_payment_successful"


CAPTION_LINE = 16  # a caption line's height above the panels


def caption_svg(caption: tuple[str, ...]) -> str:
    """A picture's caption: a text line each, from the top left."""
    return "".join(
        f'<text x="8" y="{CAPTION_LINE * (number + 1)}" font-size="12" fill="#24292f">{html.escape(line)}</text>'
        for number, line in enumerate(caption)
    )


def caption_height(caption: tuple[str, ...]) -> int:
    return CAPTION_LINE * len(caption) + (6 if caption else 0)


def tiled(panels: list[str], columns: int, caption: tuple[str, ...] = ()) -> str:
    """Panels in one SVG, row by row `columns` wide, under the caption's lines (none: the panels alone)."""
    top = caption_height(caption)
    width, height = columns * PANEL_WIDTH, top + -(-len(panels) // columns) * PANEL_HEIGHT

    def placed(panel: str, index: int) -> str:
        x, y = index % columns * PANEL_WIDTH, top + index // columns * PANEL_HEIGHT
        return panel.replace(
            '<svg class="panel"', f'<svg x="{x}" y="{y}" width="{PANEL_WIDTH}" height="{PANEL_HEIGHT}" class="panel"', 1
        )

    body = "".join(placed(panel, i) for i, panel in enumerate(panels))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}">{caption_svg(caption)}{body}</svg>\n'
    )


def picture(seed: int, entity_type: str, entity_name: str, segment: Segment, day: int, label: str) -> str:
    world = build_world(TIERS["frontier"], resolve_episode_config(seed=seed, difficulty="frontier"))
    aggregate, part = build_panel(world.data.segment_funnel(Segment())), build_panel(world.data.segment_funnel(segment))
    dates = list(world.data.segment_funnel(Segment()).dates)
    mark = [Mark(dates[day], label, truth=True)]
    k = aggregate.index(entity_type, entity_name)
    return tiled(
        [
            line_panel_svg(dates, [float(v) for v in aggregate.values[k]], f"all traffic: {entity_name}", mark),
            line_panel_svg(dates, [float(v) for v in part.values[k]], f"{segment.label()} (same metric)", mark),
        ],
        columns=2,
    )


def pictures() -> dict[str, str]:
    """Every picture by its file name: one per frontier incident kind and the mix shift, each from the first seed
    from PICTURE_SEED_BASE whose episode holds that kind."""
    drawn: dict[str, str] = {}
    wanted = set(TIERS["frontier"].incident_kinds) | {"mix_shift"}
    seed = PICTURE_SEED_BASE
    while wanted:
        world = build_world(TIERS["frontier"], resolve_episode_config(seed=seed, difficulty="frontier"))
        for incident in world.incidents:
            if incident.kind in wanted and incident.record.continues is None:
                wanted.discard(incident.kind)
                record = incident.record
                drawn[f"frontier_{incident.kind}.svg"] = picture(
                    seed, record.entity_type, record.entity_name, incident.segment, record.day, incident.kind
                )
        for fluctuation in world.fluctuations:
            if fluctuation.kind in wanted:
                wanted.discard(fluctuation.kind)
                drawn[f"frontier_{fluctuation.kind}.svg"] = picture(
                    seed, "conversion_rate", MIX_METRIC, fluctuation.segment, fluctuation.day, "mix shift"
                )
        seed += 1
    return drawn


def write_pictures(drawn: dict[str, str]) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for name, svg in drawn.items():
        (OUTPUT / name).write_text(svg)


def stale_pictures(drawn: dict[str, str], root: Path, prefix: str) -> list[str]:
    """The pictures named `prefix*.svg` under root/OUTPUT that differ from `drawn`: changed, missing or extra."""
    kept = {path.name: path.read_text() for path in (root / OUTPUT).glob(f"{prefix}*.svg")}
    return sorted(name for name in set(kept) | set(drawn) if kept.get(name) != drawn.get(name))


def main() -> None:
    write_pictures(pictures())


if __name__ == "__main__":
    main()
