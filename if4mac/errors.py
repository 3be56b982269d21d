"""The one exception type for problems a user can fix, and how it is shown.

Every ``if4mac`` command reports a problem with its input (a bad option value, a malformed
file, an output path that cannot be written) as :class:`UserError`: one line, ``Error: ...``,
exit status 2 (:mod:`if4mac.command` does the mapping, in one place). Library code raises
``ValueError`` (``UserError`` is one) or ``OSError``; the commands never print a traceback for
either. No click here: the golden model imports this module.
"""

from __future__ import annotations

__all__ = ["UserError", "ParameterTypeError", "EXIT_USER_ERROR", "one_line"]

#: Exit status of a command that stopped on a user error (click uses 2 for usage errors too).
EXIT_USER_ERROR = 2


class UserError(ValueError):
    """A problem with the user's input or output paths; the message names it, on one line."""


class ParameterTypeError(TypeError, ValueError):
    """A parameter of the wrong type (a float block size, a string where a bool belongs).

    A ``TypeError``, as Amaranth and Python raise for wrong types; also a ``ValueError``, the
    toolkit's one kind of bad-parameter error, so code that catches bad parameters (and the
    commands' mapping to exit status 2) needs no second clause."""


def one_line(err: BaseException) -> str:
    """``err`` as a single line: an ``OSError`` as ``path: reason``, newlines folded."""
    if isinstance(err, OSError) and err.strerror:
        where = err.filename if err.filename is not None else ""
        text = f"{where}: {err.strerror}" if where != "" else err.strerror
        if err.filename2 is not None:
            text += f" ({err.filename2})"
    elif isinstance(err, MemoryError):
        text = "out of memory" + (f" ({err})" if str(err) else "")
    elif isinstance(err, RecursionError):
        text = "input nested too deeply"
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())
