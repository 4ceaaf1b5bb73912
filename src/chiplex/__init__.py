"""chiplex: partition ML tensor programs across the chiplets of a multi-chip module."""

__version__ = "0.1.0"
