"""paraloop's version and the rewriter's; both are part of the bytecode cache key.

Kept apart from the rewriter so that finding the cache does not import it.
"""

__version__ = "0.1.0"
# Bump on any change to the generated code (paraloop/hook/rewriter.py).
REWRITER_VERSION = 16
