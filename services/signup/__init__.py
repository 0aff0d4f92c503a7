"""The sign-up example domain (see domain.py and README.md)."""
