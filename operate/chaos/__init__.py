"""`cdc chaos` / `make chaos`: mixed replication and saga load while random faults are injected
with the stack's own controls, then the invariants that must hold whatever was killed."""
