"""Benchmarks: commands that print figures (medians of runs), never timed tests."""
