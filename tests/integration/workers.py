"""Kept for imports in older tests: the one implementation is the pytest plugin's (cdc_testing)."""
from cdc_testing.workers import REPO, SAGA_TEST_ENV, WorkerProcess, diagnose

__all__ = ["REPO", "SAGA_TEST_ENV", "WorkerProcess", "diagnose"]
