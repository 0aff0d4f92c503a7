"""Kept for imports in older tests: the one implementation is the pytest plugin's (cdc_testing)."""
from cdc_testing.ports import PORT_TAKEN, free_port

__all__ = ["PORT_TAKEN", "free_port"]
