"""Faust stream workers: replication agents and saga handlers (coming with the replication
and saga issues)."""
