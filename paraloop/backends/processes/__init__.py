"""The process backend: a pool of worker processes, each on a pipe of its own.

The module map, and how a chunk travels, are in docs/internals.md; the messages are drawn
in protocol.py's docstring.
"""
