"""Versioned clinical knowledge files (data only; see README.md)."""
