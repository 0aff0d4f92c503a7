"""The one definition of a stuck saga, shared by `cdc observe sagas`, the console and the
orchestrator's `cdc_sagas_stuck` metric (and so the CdcSagasStuck alert)."""
from __future__ import annotations

STUCK_AFTER_S = 60.0   # a saga neither ended nor moved for this long is stuck
# a WHERE clause on saga_instances; its one parameter is STUCK_AFTER_S (or the caller's own limit)
STUCK = "state IN ('RUNNING', 'COMPENSATING') AND updated_at < now() - make_interval(secs => %s)"
