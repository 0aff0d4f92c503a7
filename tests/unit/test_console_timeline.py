"""The saga timeline drawing: lanes in step order, commands out and replies back as arrows,
compensations and failures told apart, everything else a mark on the coordinator's lane."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console.timeline import COORDINATOR, draw

pytestmark = pytest.mark.unit
T0 = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
STEPS = {"create_order": "orders", "authorize_payment": "payments", "reserve_stock": "inventory"}


def _events(*rows):
    return [(T0 + timedelta(seconds=i), *row) for i, row in enumerate(rows)]


def test_lanes_follow_the_steps_and_arrows_go_out_and_back() -> None:
    d = draw(_events(("started", None, None, "order 7"),
                     ("sent", "authorize_payment", "action", "Authorize attempt 1"),
                     ("replied", "authorize_payment", "action", "ok"),
                     ("sent", "reserve_stock", "action", "Reserve attempt 1"),
                     ("replied", "reserve_stock", "action", "failed: out of stock"),
                     ("sent", "authorize_payment", "compensation", "Refund attempt 1"),
                     ("replied", "authorize_payment", "compensation", "ok"),
                     ("ended", None, None, "COMPENSATED")), STEPS)
    assert [n for n, _ in d.lanes] == [COORDINATOR, "orders", "payments", "inventory"]
    x = dict(d.lanes)
    out, back = d.arrows[0], d.arrows[1]
    assert (out.x1, out.x2, out.kind) == (x[COORDINATOR], x["payments"], "sent")
    assert (back.x1, back.x2, back.kind) == (x["payments"], x[COORDINATOR], "replied")
    assert [a.compensation for a in d.arrows] == [False, False, False, False, True, True]
    assert [a.failed for a in d.arrows] == [False, False, False, True, False, False]
    assert [m.kind for m in d.marks] == ["started", "ended"]
    assert [y for y, _ in d.times] == sorted(y for y, _ in d.times) and len(d.times) == 8
    assert d.height > d.times[-1][0] and d.width > max(x.values())


def test_a_step_the_definition_does_not_name_gets_its_own_lane() -> None:
    d = draw(_events(("sent", "unknown_step", "action", "X attempt 1")), {})
    assert [n for n, _ in d.lanes] == [COORDINATOR, "unknown_step"]
    assert len(d.arrows) == 1 and not d.marks
