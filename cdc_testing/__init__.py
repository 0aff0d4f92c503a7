"""Testing services on the real pipeline: the pytest plugin (`cdc_testing.plugin`, loaded by
pytest through the package's `pytest11` entry point) and the parts its fixtures are made of,
usable from scripts too: `stack` (find, start, address the stack), `workers` (worker
subprocesses), `faults` (kill, pause, stop, heal), `waits` (replicas, sagas, rows), `events`
(read topics), `polling` (wait for a condition with a deadline)."""
