"""Safe output: how every file the toolkit writes gets onto the disk.

* A file is never truncated in place: :func:`atomic_file` writes a temporary file in the
  target's own directory, flushes and fsyncs it, gives it the target's permissions and renames
  it over the target (``os.replace``, atomic on POSIX). If anything fails or is interrupted
  (a full disk, Ctrl-C) the temporary is removed and the old file is untouched: a reader sees
  the complete old file or the complete new one, never a mix. A target that exists and is not
  a regular file (``/dev/null``, a pipe) is written in place, as a stream.
* A file written by another program (a simulator's waves) goes through :func:`atomic_path`:
  the program writes a temporary path that is then renamed over the target the same way.
* :func:`check_output` and :func:`check_output_dir` run before any work starts: the parent
  directory must exist (or be creatable, for directories the toolkit creates), be a directory
  and be writable, the target must not be a directory, and an output must not be one of the
  command's inputs (same resolved path or same inode), so an hour-long run never ends with a
  write that cannot happen, and a typo never overwrites an input.

Errors: the checks raise :class:`if4mac.errors.UserError`; a failed write raises the
``OSError`` with the target's path as its filename.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from .errors import UserError

__all__ = ["check_output", "check_output_dir", "atomic_file", "atomic_path", "write_text",
           "write_bytes", "completed", "same_file"]

#: Targets replaced in this process, in order (the CLI names them when interrupted).
completed: list[Path] = []

_umask_lock = threading.Lock()


def _umask() -> int:
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def same_file(a, b) -> bool:
    """True if paths ``a`` and ``b`` name one file: the same resolved path or the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path("/")


def _check_dir_usable(directory: Path, create: bool, what: str) -> None:
    """``directory`` exists as a writable directory, or (``create``) can be made; else a
    UserError starting with ``what``."""
    if directory.is_dir():
        anchor = directory
    elif not create:
        if os.path.lexists(directory):
            raise UserError(f"{what}: {directory} is not a directory")
        raise UserError(f"{what}: No such file or directory")
    else:
        anchor = _nearest_existing(directory)
        if not anchor.is_dir():
            raise UserError(f"{what}: {anchor} is not a directory")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise UserError(f"{what}: Permission denied (directory {anchor} is not writable)")


def check_output(path, *, option: str = "--output", inputs: Iterable = (),
                 suffix: str | None = None, create_parents: bool = False) -> Path:
    """Check, before any work, that output file ``path`` can be written; return it as a Path.

    ``inputs``: (option, path) pairs, or plain paths, that the output must not be;
    ``suffix``: the one file-name suffix allowed (e.g. ``".npz"``); ``create_parents``: the
    parent directory may be missing and is created at write time (else it must exist).
    Raises :class:`UserError` naming ``option``.
    """
    p = Path(path)
    if str(path) == "":
        raise UserError(f"{option}: empty path")
    if suffix is not None and p.suffix.lower() != suffix:
        raise UserError(f"{option} {p}: the file name must end in {suffix} (the output is "
                        f"written to exactly the path given)")
    what = f"cannot write {p}"            # as the failed write would say, but before the work
    if p.is_dir():
        raise UserError(f"{what}: Is a directory")
    target = Path(os.path.realpath(p))
    _check_dir_usable(target.parent, create_parents, what)
    for item in inputs:
        in_option, in_path = item if isinstance(item, tuple) else ("an input", item)
        if in_path is not None and str(in_path) != "" and same_file(p, in_path):
            raise UserError(f"{option} {p} is the same file as {in_option} {in_path}: "
                            f"refusing to overwrite an input")
    return p


def check_output_dir(path, *, option: str, create: bool = True) -> Path:
    """Check that directory ``path`` exists or can be created, and is writable."""
    p = Path(path)
    if str(path) == "":
        raise UserError(f"{option}: empty path")
    _check_dir_usable(p, create, f"cannot use {option} {p}")
    return p


def _tagged(err: OSError, path: Path) -> OSError:
    """``err`` re-raised against the target (not the temporary file's name)."""
    return OSError(err.errno, err.strerror or str(err), str(path))


def _temporary(target: Path) -> tuple[int, Path]:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise _tagged(err, target) from None
    return fd, Path(tmp)


def _finish(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the target's permissions and rename it over the target; fsync the folder."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    os.chmod(tmp, mode)
    os.replace(tmp, target)
    with contextlib.suppress(OSError):        # not every filesystem lets a directory be fsynced
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    completed.append(target)


def _resolve_target(path) -> Path:
    # Follow symlinks: a link to a file keeps pointing at the (new) file.
    return Path(os.path.realpath(path))


@contextlib.contextmanager
def atomic_file(path, mode: str = "w", *, encoding: str | None = "utf-8") -> Iterator[IO]:
    """An open file whose contents replace ``path`` only when the ``with`` block completes."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file writes with mode 'w' or 'wb', not {mode!r}")
    target = _resolve_target(path)
    kwargs = {"encoding": encoding} if mode == "w" else {}
    if os.path.exists(target) and not os.path.isfile(target):
        with open(target, mode, **kwargs) as stream:     # a device or pipe: write through
            yield stream
        return
    fd, tmp = _temporary(target)
    with _removed_on_failure(tmp, path):
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _finish(tmp, target)


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A temporary path beside ``path`` for another program to write; renamed over ``path``
    when the ``with`` block completes, removed if it fails."""
    target = _resolve_target(path)
    fd, tmp = _temporary(target)
    os.close(fd)
    with _removed_on_failure(tmp, path):
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        _finish(tmp, target)


@contextlib.contextmanager
def _removed_on_failure(tmp: Path, path) -> Iterator[None]:
    # The one failure rule of both writers: the temporary goes, the target stays as it was,
    # and an OSError names the user's path.
    try:
        yield
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _tagged(err, Path(path)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text(path, text: str) -> Path:
    """Replace ``path`` with ``text`` (UTF-8), atomically; returns ``path`` as a Path."""
    with atomic_file(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_bytes(path, data: bytes) -> Path:
    """Replace ``path`` with ``data``, atomically; returns ``path`` as a Path."""
    with atomic_file(path, "wb") as fh:
        fh.write(data)
    return Path(path)
