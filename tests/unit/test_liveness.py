"""When the watchdog calls a partition stalled (and restarts the worker), and when it must not."""
from streams.liveness import Liveness

TP = ("outbox.event.payments-commands", 0)
OTHER = ("outbox.event.payments-commands", 1)


def test_a_partition_behind_without_acks_past_the_limit_is_stalled():
    live = Liveness(stall_after=20)
    assert live.stalled({TP: 5}, {TP: 3}, now=100) == []            # 2 behind the group's offset: the clock starts
    assert live.stalled({TP: 5}, {TP: 3}, now=119) == []
    found = live.stalled({TP: 5}, {TP: 3}, now=121)
    assert len(found) == 1 and "is 2 behind" in found[0] and "21s" in found[0]


def test_acknowledgements_restart_the_clock_and_catching_up_clears_it():
    live = Liveness(stall_after=20)
    live.stalled({TP: 10}, {TP: 0}, now=0)
    live.acknowledged({TP: 4}, now=15)
    assert live.stalled({TP: 10}, {TP: 0}, now=30) == []            # 15 s since the last ack
    assert live.behind({TP: 10}, {TP: 0}) == {TP: 5}
    assert live.behind({TP: 10}, {TP: 8}) == {TP: 2}                # committed past our acks (another member)
    live.acknowledged({TP: 9}, now=31)
    assert live.stalled({TP: 10}, {TP: 5}, now=100) == []           # caught up: never stalled


def test_a_worker_retrying_its_database_is_waiting_not_stalled():
    live = Liveness(stall_after=20)
    live.stalled({TP: 10}, {TP: 0}, now=0)
    with live.retrying():
        assert live.stalled({TP: 10}, {TP: 0}, now=60) == []
    assert live.stalled({TP: 10}, {TP: 0}, now=70) == []            # the clock started again at 60
    assert live.stalled({TP: 10}, {TP: 0}, now=81) != []


def test_only_the_stuck_partition_is_named_and_revoked_ones_are_forgotten():
    live = Liveness(stall_after=5)
    live.stalled({TP: 3, OTHER: 3}, {TP: 0, OTHER: 0}, now=0)
    live.acknowledged({OTHER: 2}, now=4)
    found = live.stalled({TP: 3, OTHER: 3}, {TP: 0, OTHER: 0}, now=6)
    assert len(found) == 1 and found[0].startswith(f"{TP[0]}:0 ")
    # TP moves to another worker and comes back later: old bookkeeping must not count against it
    live.acknowledged({TP: 1}, now=6)
    live.stalled({OTHER: 3}, {OTHER: 3}, now=7)
    assert live.stalled({TP: 50}, {TP: 40}, now=100) == []
    assert live.behind({TP: 50}, {TP: 40}) == {TP: 10}


def test_acknowledged_offsets_the_group_never_commits_are_a_stall():
    live = Liveness(stall_after=20)
    live.acknowledged({TP: 9}, now=0)
    assert live.stalled({TP: 10}, {TP: 5}, now=1) == []             # caught up by our acks: not behind
    assert live.stalled({TP: 10}, {TP: 5}, now=20) == []
    found = live.stalled({TP: 10}, {TP: 5}, now=22)
    assert len(found) == 1 and "acknowledged up to 9" in found[0] and "stayed at 5 for 21s" in found[0]


def test_a_commit_that_moves_or_covers_every_ack_is_not_a_stall():
    live = Liveness(stall_after=20)
    live.acknowledged({TP: 9}, now=0)
    live.stalled({TP: 10}, {TP: 5}, now=1)
    assert live.stalled({TP: 10}, {TP: 7}, now=15) == []            # the commit moved: the clock starts again
    assert live.stalled({TP: 10}, {TP: 7}, now=34) == []
    assert live.stalled({TP: 10}, {TP: 10}, now=60) == []           # every ack committed
    live.acknowledged({TP: 12}, now=61)
    assert live.stalled({TP: 13}, {TP: 10}, now=62) == []           # a new run of acks: a fresh clock
    assert live.stalled({TP: 13}, {TP: 10}, now=80) == []
    assert live.stalled({TP: 13}, {TP: 10}, now=83) != []
