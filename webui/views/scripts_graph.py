"""The editor's graph preview, laid out on the server so no drawing library is needed: columns by the BFS
depth from the start step, steps as boxes in the script's order within a column, edges as lines (curves
when they go back or stay in a column) labelled with their option, rule or default. Steps the start never
reaches sit in one last column. `scripts/_graph.html` draws the result as SVG (autoescaped)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from scripts_engine.model import AnyStep, AskStep, EndStep, ScriptDraft, edges

BOX_W = 168
BOX_H = 52
COL_GAP = 84
ROW_GAP = 26
MARGIN = 20
MAX_LABEL = 24


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    title: str
    x: int
    y: int
    outcome: str | None  # an end step's outcome, for its colour
    start: bool
    reached: bool
    flagged: bool  # has a validation problem


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: str  # the SVG path data
    label: str
    label_x: int
    label_y: int
    back: bool


@dataclass(frozen=True)
class Graph:
    width: int
    height: int
    nodes: list[Node]
    edges: list[Edge]
    box_w: int = BOX_W
    box_h: int = BOX_H


def _short(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _edge_label(step: AnyStep, label: str) -> str:
    """`option:car` → the option's value; `rule:0` → "rule 1"; `next` → nothing; `default` stays."""
    kind, _, rest = label.partition(":")
    if kind == "option" and isinstance(step, AskStep):
        return _short(rest, 14)
    if kind == "rule":
        return f"#{int(rest) + 1}"
    return "" if kind == "next" else kind


def _depths(draft: ScriptDraft, steps: dict[str, AnyStep]) -> dict[str, int]:
    depth: dict[str, int] = {}
    if draft.start in steps:
        depth[draft.start] = 0
        queue = deque([draft.start])
        while queue:
            current = queue.popleft()
            for _, target in edges(steps[current]):
                if target in steps and target not in depth:
                    depth[target] = depth[current] + 1
                    queue.append(target)
    return depth


def layout(draft: ScriptDraft, flagged: set[str] | None = None) -> Graph:
    flagged = flagged or set()
    steps: dict[str, AnyStep] = {}
    for step in draft.steps:
        steps.setdefault(step.id, step)
    depth = _depths(draft, steps)
    last = max(depth.values(), default=-1) + 1
    columns: dict[int, list[str]] = {}
    for step_id in steps:
        columns.setdefault(depth.get(step_id, last), []).append(step_id)
    place: dict[str, tuple[int, int]] = {}
    nodes: list[Node] = []
    for column, ids in sorted(columns.items()):
        for row, step_id in enumerate(ids):
            x = MARGIN + column * (BOX_W + COL_GAP)
            y = MARGIN + row * (BOX_H + ROW_GAP)
            place[step_id] = (x, y)
            step = steps[step_id]
            nodes.append(
                Node(
                    id=step_id,
                    kind=step.kind,
                    title=_short(step.title),
                    x=x,
                    y=y,
                    outcome=step.outcome.value if isinstance(step, EndStep) else None,
                    start=step_id == draft.start,
                    reached=step_id in depth,
                    flagged=step_id in flagged,
                )
            )
    lines: list[Edge] = []
    for step_id, step in steps.items():
        sx, sy = place[step_id]
        for label, target in edges(step):
            if target not in place:
                continue  # a dangling edge: listed as a problem, nothing to draw to
            tx, ty = place[target]
            text = _edge_label(step, label)
            if tx > sx:
                x1, y1, x2, y2 = sx + BOX_W, sy + BOX_H // 2, tx, ty + BOX_H // 2
                bend = (x2 - x1) // 2
                path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
                lines.append(Edge(step_id, target, path, text, (x1 + x2) // 2, (y1 + y2) // 2 - 4, False))
            else:  # back (or within the column): leave at the bottom, come in at the top
                x1, y1, x2, y2 = sx + BOX_W // 2 + 10, sy + BOX_H, tx + BOX_W // 2 - 10, ty
                drop = BOX_H + ROW_GAP // 2
                path = f"M{x1},{y1} C{x1 + 40},{y1 + drop} {x2 - 40},{y2 - drop} {x2},{y2}"
                mid_y = (y1 + y2) // 2
                lines.append(Edge(step_id, target, path, text, (x1 + x2) // 2, mid_y, True))
    width = MARGIN * 2 + (max(columns, default=0) + 1) * (BOX_W + COL_GAP) - COL_GAP
    rows = max((len(ids) for ids in columns.values()), default=1)
    height = MARGIN * 2 + rows * (BOX_H + ROW_GAP) - ROW_GAP + BOX_H // 2
    return Graph(width=width, height=height, nodes=nodes, edges=lines)
