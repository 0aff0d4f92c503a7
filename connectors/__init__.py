"""Debezium connector configs (JSON beside this file) and the client that deploys them."""
