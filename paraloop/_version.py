"""paraloop's version; part of the bytecode cache key."""

__version__ = "0.1.0"
