"""Kept for imports in older tests: the one implementation is the pytest plugin's (cdc_testing)."""
from cdc_testing.events import TopicReader, committed_offset

__all__ = ["TopicReader", "committed_offset"]
