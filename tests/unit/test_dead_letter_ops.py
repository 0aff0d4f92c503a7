"""The operator's view of dead letters and the re-drive rules, without a broker."""
from __future__ import annotations

from operate.audit import Action, handled
from operate.letters import letter_of, reason_group
from operate.redrive import MAX_REDRIVES, plan
from streams.deadletter import DeadLetter, RawMessage, dlq_headers


def _letter(reason: str = "malformed: not JSON", redrives: int | None = None, offset: int = 7, origin=True):
    original = [("trace", b"abc")] + ([("cdc.redrives", str(redrives).encode())] if redrives is not None else [])
    raw = RawMessage("orders.public.customers", 2, 41, b"k", b"{bad", tuple(original))
    headers = dlq_headers(DeadLetter(raw, reason), "customers-to-inventory")
    if not origin:
        headers = [(k, v) for k, v in headers if k not in ("dlq.topic", "dlq.partition")]
    return letter_of("dlq.replication.customers-to-inventory", 0, offset, b"k", b"{bad", headers)  # type: ignore[arg-type]


def test_a_letter_knows_its_origin_reason_and_original_headers():
    m = _letter(redrives=2)
    assert (m.origin_topic, m.origin_partition, m.origin_offset) == ("orders.public.customers", 2, 41)
    assert m.reason == "malformed: not JSON" and m.worker == "customers-to-inventory"
    assert m.redrives == 2
    assert ("trace", b"abc") in m.headers and not any(k.startswith("dlq.") for k, _ in m.headers)
    assert m.id == "dlq.replication.customers-to-inventory:0:7"


def test_letters_of_the_same_cause_share_a_reason_group():
    a = reason_group("rejected by inventory: value 'x1' violates check constraint \"no_rejects\" (row 12)")
    b = reason_group("rejected by inventory: value 'y' violates check constraint \"no_rejects\" (row 345)")
    assert a == b
    assert reason_group("malformed: not JSON") != a


def test_plan_refuses_a_letter_looping_through_redrives_handled_ones_and_unknown_origins():
    fresh, looping, done, lost = (_letter(offset=1), _letter(offset=2, redrives=MAX_REDRIVES), _letter(offset=3),
                                  _letter(offset=4, origin=False))
    prior = handled([Action.of("discard", done, "ops", "known bad")])
    plans = {p.letter.offset: p for p in plan([fresh, looping, done, lost], prior)}
    assert plans[1].refused is None and "position guard" in plans[1].effect
    assert "re-driven 3 times" in (plans[2].refused or "")
    assert "already discarded by ops" in (plans[3].refused or "")
    assert "origin is unknown" in (plans[4].refused or "")
    assert plans[1].target == "orders.public.customers[2]"


def test_a_redriven_message_dead_lettered_again_keeps_its_redrive_count():
    """The worker copies the original's own headers onto a new dead letter: the count survives the loop."""
    m = _letter(redrives=1)
    again = RawMessage(m.origin_topic, 2, 99, m.key, m.value, m.headers)
    relettered = letter_of(m.dlq_topic, 0, 8, m.key, m.value, dlq_headers(DeadLetter(again, m.reason), m.worker))  # type: ignore[arg-type]
    assert relettered.redrives == 1


def test_first_action_on_a_letter_is_the_one_that_counts():
    m = _letter()
    first, second = Action.of("redrive", m, "a", "fixed"), Action.of("discard", m, "b", "late")
    assert handled([first, second])[m.id] is first
