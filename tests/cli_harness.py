"""Run the ``if4mac`` entry point in this process, as the console script does (for tests that
need to patch the work a command would start, and for the fuzz suite)."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

from if4mac.cli import main


class Reached(Exception):
    """Raised by a patched stand-in for a command's real work: the input got that far."""


def invoke(*args) -> tuple[int, str, str]:
    """``(exit status, stdout, stderr)`` of ``if4mac ARGS``; a :class:`Reached` propagates."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, out: str, err: str, status: int = 2) -> None:
    """The README's promise: ``Error: ...`` on one line of stderr, the status, no traceback."""
    assert code == status, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
