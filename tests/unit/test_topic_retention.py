"""How long rows that remember consumed messages (saga inbox, replica delete markers) live:
the longest retention of the topics, plus a margin; forever if a topic keeps messages forever."""
from __future__ import annotations

from streams.topic_retention import REDELIVERY_MARGIN_S, keep_seconds, lifetime_ms


def test_the_longest_retention_plus_the_margin():
    assert keep_seconds([2_000]) == 2.0 + REDELIVERY_MARGIN_S
    assert keep_seconds([604_800_000, 2_000]) == 604_800.0 + REDELIVERY_MARGIN_S


def test_a_topic_that_keeps_messages_forever_keeps_the_rows_forever():
    assert keep_seconds([-1]) is None
    assert keep_seconds([2_000, -1, 604_800_000]) is None, "one forever topic is enough"


def test_the_margin_is_a_day():
    assert REDELIVERY_MARGIN_S == 86_400.0
    assert keep_seconds([0]) == REDELIVERY_MARGIN_S


def test_a_message_can_outlive_retention_by_a_segment():
    """Kafka deletes closed segments only: the active one rolls segment.ms after its first message."""
    assert lifetime_ms(604_800_000, 604_800_000) == 2 * 604_800_000
    assert lifetime_ms(2_000, 2_000) == 4_000
    assert lifetime_ms(-1, 604_800_000) == -1, "forever stays forever"
