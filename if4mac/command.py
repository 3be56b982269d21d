"""click command classes that turn every user error into one line and exit status 2.

All ``if4mac`` commands are built with :class:`Command` (the group with :class:`Group`), so the
mapping is done here once: :class:`if4mac.errors.UserError` and any other ``ValueError``
(the library's way of rejecting bad input), an ``OSError`` (a file that cannot be read or
written) and a ``MemoryError`` become ``Error: <one line>`` with exit status 2, whether the
command runs from the ``if4mac`` console script, ``click.testing.CliRunner`` or on its own.
"""

from __future__ import annotations

import functools

import click

from .errors import EXIT_USER_ERROR, UserError, one_line

__all__ = ["Command", "Group", "ShownUserError", "block_size_callback", "arch_options",
           "mac_config"]


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


#: The architecture options' names as the command line spells them (for the error messages).
_ARCH_OPTION_NAMES = {"acc_width": "--acc-width", "converter": "--converter"}


def arch_options(command):
    """The architecture options of every command that builds a MAC configuration:
    ``--arch``, ``--acc-width`` and ``--converter`` (fused-exact's), beside the command's own
    unit, block-size and reduction options. The command receives them as one keyword,
    ``arch_options`` (a dict), for :func:`mac_config`."""
    from if4mac.golden.config import ARCHITECTURES
    from if4mac.golden.fused import CONVERTERS, DEFAULT_SEGMENT_BEATS, SERIAL_CONVERTER_BUSY

    @functools.wraps(command)
    def wrapper(*args, arch, acc_width, converter, **kwargs):
        return command(*args, arch_options={"arch": arch, "acc_width": acc_width,
                                            "converter": converter}, **kwargs)

    options = [
        click.option("--arch", type=click.Choice(tuple(ARCHITECTURES)), default="reference",
                     show_default=True,
                     help="reference: the authors' per-lane MAC; fused-fp32: one exact block "
                          "dot product per beat, binary32 accumulation; fused-exact: the "
                          "segment's exact sum, rounded once (docs/spec.md)."),
        click.option("--acc-width", type=int, default=None,
                     help=f"fused-exact: accumulator bits [default: the narrowest that takes "
                          f"{DEFAULT_SEGMENT_BEATS} beats per segment]."),
        click.option("--converter", type=click.Choice(CONVERTERS), default=None,
                     help=f"fused-exact: the final conversion; serial (IF4 only) shares one "
                          f"/49 and needs closing beats {SERIAL_CONVERTER_BUSY + 1} or more "
                          f"cycles apart [default: pipelined]."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def mac_config(unit: str, block_size: int, reduction: str, arch_options: dict):
    """The one :class:`~if4mac.golden.MacConfig` of a command's options, validated once: a
    bad combination is a one-line :class:`~.errors.UserError` naming the option."""
    from if4mac.golden import MacConfig

    try:
        return MacConfig(unit, block_size, reduction, **arch_options)
    except ValueError as err:
        message = str(err)
        for name, option in _ARCH_OPTION_NAMES.items():
            if message.startswith(name + " "):
                message = option + message[len(name):]
        raise UserError(message) from None
