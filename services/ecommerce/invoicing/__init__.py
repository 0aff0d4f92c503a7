"""The invoicing service."""
