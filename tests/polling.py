"""Kept for imports in older tests: the one implementation is the pytest plugin's (cdc_testing)."""
from cdc_testing.polling import poll

__all__ = ["poll"]
