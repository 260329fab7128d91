"""Command-line interface (``painpath``)."""
