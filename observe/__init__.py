"""Observation of the pipeline: replication pairs (counts, checksums, lag, convergence)."""
