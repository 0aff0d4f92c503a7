"""The framework's own tables, one alembic chain applied to every service database
(`migrations/`: outbox, Debezium's signal and heartbeat, saga inbox and watches, replication
sources) and one for the saga store (`saga_store/`), plus what is derived from the domains'
declarations at every migrate: the publication with its grants, and the replica tables."""
