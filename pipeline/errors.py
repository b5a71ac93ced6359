"""The exception the CLI turns into a one-line message instead of a traceback."""
from __future__ import annotations

import re
from typing import Mapping

__all__ = ["MosaicError", "message_with_names"]

_PARAMETER = re.compile(r"`(\w+)`")


class MosaicError(Exception):
    """A problem the user can fix (bad input, unreachable cluster, unusable cache).

    Messages name the library's parameters in backquotes (``"`max_uses` must be at
    least 1"``), so that a front end can say them its own way: the command line
    turns them into its flags with :func:`message_with_names`.
    """


def message_with_names(error: Exception, names: Mapping[str, str]) -> str:
    """The error's message with every backquoted parameter replaced by its name in ``names`` (kept if absent)."""
    return _PARAMETER.sub(lambda match: names.get(match[1], match[1]), str(error))
