"""A stand-in external identity provider (an HTTP service with its own database)."""
