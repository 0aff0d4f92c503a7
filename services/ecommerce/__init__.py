"""The e-commerce example domain (see domain.py)."""
