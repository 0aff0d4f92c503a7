from observe.slots import SlotReport, judge, offset_lsn


def report(**kw) -> SlotReport:
    base = {"connector": "orders-source", "service": "orders", "slot": "cdc_orders", "wal_lsn": 10_000,
            "exists": True, "active": True, "wal_status": "reserved", "restart_lsn": 9_000, "confirmed_lsn": 9_500,
            "offset_lsn": 9_600}
    return SlotReport(**{**base, **kw})


def test_a_healthy_slot_has_no_problem():
    r = report()
    assert (r.retained_bytes, r.unconfirmed_bytes) == (1_000, 500)
    assert judge(r, 2_000) == []


def test_too_much_wal_retained():
    assert judge(report(), 999) == ["1000 bytes of WAL retained > 999"]


def test_a_missing_slot():
    assert "slot missing" in judge(report(exists=False, restart_lsn=None, confirmed_lsn=None), 2_000)[0]


def test_a_slot_ahead_of_the_stored_offset_was_recreated():
    assert "dropped and recreated" in judge(report(confirmed_lsn=9_700), 2_000)[0]


def test_lost_wal():
    assert "removed" in judge(report(wal_status="lost"), 2_000)[0]


def test_offset_lsn_is_the_furthest_position_of_the_offset():
    assert offset_lsn({"lsn_proc": 5, "lsn_commit": 4, "lsn": 5, "txId": 99}) == 5
    assert offset_lsn(None) is None and offset_lsn({}) is None
