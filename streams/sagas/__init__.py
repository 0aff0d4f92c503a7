"""Sagas: definitions as data, and the pure state machine that drives them. The orchestrator
and participants that run them on the real stack build on this (issue: sagas)."""
