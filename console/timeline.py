"""A saga's timeline as a drawing: one lane for the coordinator (the orchestrator, or the
choreography's monitor) and one per participant in step order; a command is an arrow from the
coordinator to the participant, a reply an arrow back, compensations in another colour, and
the rest (started, timed out, delayed, ended, taken over) marks on the coordinator's lane.
Pure: the page renders it as SVG."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

COORDINATOR = "coordinator"
LANE_W, ROW_H, TOP, LEFT = 170, 26, 40, 90


@dataclass(frozen=True)
class Arrow:
    y: int
    x1: int
    x2: int
    label: str
    kind: str            # sent | replied
    compensation: bool
    failed: bool


@dataclass(frozen=True)
class Mark:
    y: int
    x: int
    label: str
    kind: str


@dataclass(frozen=True)
class Drawing:
    lanes: list[tuple[str, int]]     # (name, x)
    arrows: list[Arrow]
    marks: list[Mark]
    times: list[tuple[int, str]]     # (y, hh:mm:ss.mmm)
    width: int
    height: int


Event = tuple[datetime, str, str | None, str | None, str | None]   # at, kind, step name, action, detail


def draw(events: Sequence[Event], participant_of: dict[str, str]) -> Drawing:
    """`participant_of`: step name -> participant, from the saga's definition (a step it does not
    name gets a lane of its own)."""
    lanes: list[str] = [COORDINATOR]
    for step in participant_of.values():
        if step not in lanes:
            lanes.append(step)
    for _, _, step_name, _, _ in events:
        lane = participant_of.get(step_name or "", step_name)
        if lane and lane not in lanes:
            lanes.append(lane)
    x = {name: LEFT + i * LANE_W + LANE_W // 2 for i, name in enumerate(lanes)}
    arrows: list[Arrow] = []
    marks: list[Mark] = []
    times: list[tuple[int, str]] = []
    for i, (at, kind, step_name, action, detail) in enumerate(events):
        y = TOP + (i + 1) * ROW_H
        times.append((y, at.strftime("%H:%M:%S.%f")[:-3]))
        lane = participant_of.get(step_name or "", step_name)
        compensation = action == "compensation"
        failed = bool(detail) and any(w in (detail or "") for w in ("failed", "refused", "rejected"))
        if kind in ("sent", "replied") and lane:
            start, end = (x[COORDINATOR], x[lane]) if kind == "sent" else (x[lane], x[COORDINATOR])
            label = f"{step_name} {action or ''}: {detail or kind}".strip()
            arrows.append(Arrow(y, start, end, label[:60], kind, compensation, failed))
        else:
            marks.append(Mark(y, x[COORDINATOR], f"{kind}{': ' + detail if detail else ''}"[:80], kind))
    return Drawing([(n, x[n]) for n in lanes], arrows, marks, times,
                   LEFT + len(lanes) * LANE_W, TOP + (len(events) + 2) * ROW_H)
