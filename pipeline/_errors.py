"""The exception the CLI turns into a one-line message instead of a traceback."""

__all__ = ["MosaicError"]


class MosaicError(Exception):
    """A problem the user can fix (bad input, unreachable cluster, unusable cache)."""
