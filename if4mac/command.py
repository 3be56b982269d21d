"""click command classes that turn every user error into one line and exit status 2.

All ``if4mac`` commands are built with :class:`Command` (the group with :class:`Group`), so the
mapping is done here once: :class:`if4mac.errors.UserError` and any other ``ValueError``
(the library's way of rejecting bad input), an ``OSError`` (a file that cannot be read or
written) and a ``MemoryError`` become ``Error: <one line>`` with exit status 2, whether the
command runs from the ``if4mac`` console script, ``click.testing.CliRunner`` or on its own.
"""

from __future__ import annotations

import click

from .errors import EXIT_USER_ERROR, one_line

__all__ = ["Command", "Group", "ShownUserError", "block_size_callback"]


class ShownUserError(click.ClickException):
    """How click shows a user error: ``Error: <message>`` on stderr, exit status 2."""

    exit_code = EXIT_USER_ERROR


def _invoke_mapped(invoke, ctx):
    try:
        return invoke(ctx)
    except (ValueError, OSError, MemoryError, RecursionError) as err:
        raise ShownUserError(one_line(err)) from None


class Command(click.Command):
    """A click command whose user errors end with one line and exit status 2."""

    def invoke(self, ctx):
        return _invoke_mapped(super().invoke, ctx)


class Group(click.Group):
    """A click group whose commands are :class:`Command` s (and whose own errors map alike)."""

    command_class = Command

    def invoke(self, ctx):
        return _invoke_mapped(super().invoke, ctx)


def block_size_callback(ctx, param, value):
    """click callback for every ``--block-size``: the toolkit's one limit
    (``golden.stimulus.check_block_size``), as a usage error."""
    from if4mac.golden import check_block_size

    if value is None:
        return value
    try:
        return check_block_size(value, "block size")
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
