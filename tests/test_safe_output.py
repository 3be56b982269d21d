"""if4mac.safe_output: atomic replacement, fault injection on the write path, the pre-checks."""

from __future__ import annotations

import errno
import os
import stat

import numpy as np
import pytest

from if4mac import safe_output
from if4mac.errors import UserError
from if4mac.safe_output import (atomic_file, atomic_path, check_output, check_output_dir,
                                write_text)
from tests.cli_harness import assert_one_line_error, invoke


def _leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


class _FailingFile:
    """A file object that accepts ``budget`` bytes and then fails like a full disk."""

    def __init__(self, real, budget: int):
        self.real, self.budget = real, budget

    def write(self, data):
        if len(data) > self.budget:
            self.real.write(data[:self.budget])
            self.real.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        self.budget -= len(data)
        return self.real.write(data)

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()


@pytest.fixture
def full_disk(monkeypatch):
    """Every file safe_output opens fails after 10 bytes (a disk that fills mid-write)."""
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        return _FailingFile(real_fdopen(fd, *args, **kwargs), 10)

    monkeypatch.setattr(safe_output.os, "fdopen", fdopen)


def test_replaces_and_keeps_permissions(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "one\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    target.chmod(0o640)
    write_text(target, "two\n")
    assert target.read_text() == "two\n" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _leftovers(tmp_path) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failed_write_keeps_the_old_file(tmp_path, full_disk):
    target = tmp_path / "out.json"
    target.write_text("the old, good contents\n")
    with pytest.raises(OSError, match="No space left") as info:
        write_text(target, "x" * 1000)
    assert info.value.filename == str(target)            # the error names the target
    assert target.read_text() == "the old, good contents\n"
    assert _leftovers(tmp_path) == []


def test_interrupt_mid_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(target, "wb") as fh:
            fh.write(b"new, partial")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_failing_fsync_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "w.npz"
    np.savez(target, a=np.arange(3))
    before = target.read_bytes()

    def fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(safe_output.os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output error"):
        with atomic_file(target, "wb") as fh:
            np.savez(fh, a=np.arange(1000))
    assert target.read_bytes() == before and _leftovers(tmp_path) == []


def test_symlink_is_followed_and_device_written_through(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    write_text(os.devnull, "discarded")                  # not replaced by a regular file
    assert not os.path.isfile(os.devnull)


def test_atomic_path_for_another_program(tmp_path):
    target = tmp_path / "w.fst"
    target.write_text("old waves")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half a run")
            raise RuntimeError("the simulator died")
    assert target.read_text() == "old waves" and _leftovers(tmp_path) == []
    with atomic_path(target) as tmp:
        tmp.write_text("new waves")
    assert target.read_text() == "new waves" and _leftovers(tmp_path) == []


def test_checks(tmp_path):
    (tmp_path / "a.npz").write_bytes(b"x")
    with pytest.raises(UserError, match="same file as --input"):
        check_output(tmp_path / "sub" / ".." / "a.npz", inputs=[("--input", tmp_path / "a.npz")])
    os.link(tmp_path / "a.npz", tmp_path / "hard.npz")            # same inode, other name
    with pytest.raises(UserError, match="same file"):
        check_output(tmp_path / "hard.npz", inputs=[("--input", tmp_path / "a.npz")])
    with pytest.raises(UserError, match="No such file or directory"):
        check_output(tmp_path / "nodir" / "x.json")
    check_output(tmp_path / "nodir" / "x.json", create_parents=True)
    with pytest.raises(UserError, match="is not a directory"):
        check_output(tmp_path / "a.npz" / "x.json", create_parents=True)
    with pytest.raises(UserError, match="Is a directory"):
        check_output(tmp_path)
    with pytest.raises(UserError, match=r"must end in \.npz"):
        check_output(tmp_path / "out.bin", suffix=".npz")
    with pytest.raises(UserError, match="is not a directory"):
        check_output_dir(tmp_path / "a.npz" / "work", option="--workdir")
    assert not (tmp_path / "nodir").exists()                    # checks create nothing


# --- fault injection through the commands (issue 15, defect 1) ----------------------------

def test_cli_stimulus_write_failure_keeps_old_file(tmp_path, full_disk):
    out = tmp_path / "s.json"
    out.write_text('{"unit": "if4", "beats": []}\n')
    assert_one_line_error(*invoke("stimulus", "--unit", "if4", "--random", "50", "-o", out))
    assert out.read_text() == '{"unit": "if4", "beats": []}\n' and _leftovers(tmp_path) == []


def test_cli_quantize_write_failure_keeps_old_file(tmp_path, monkeypatch):
    x = tmp_path / "x.npy"
    np.save(x, np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32))
    out = tmp_path / "xq.npz"
    assert invoke("quantize", "--format", "if4", "--input", x, "-o", out)[0] == 0
    good = out.read_bytes()
    real_fdopen = os.fdopen
    monkeypatch.setattr(safe_output.os, "fdopen",
                        lambda fd, *a, **k: _FailingFile(real_fdopen(fd, *a, **k), 100))
    np.save(x, np.linspace(-2, 2, 64, dtype=np.float32).reshape(2, 32))
    code, stdout, err = invoke("quantize", "--format", "if4", "--input", x, "-o", out)
    assert_one_line_error(code, stdout, err)
    assert "No space left on device" in err and str(out) in err
    assert out.read_bytes() == good and _leftovers(tmp_path) == []


def test_cli_verilog_write_failure_keeps_old_file(tmp_path, full_disk):
    out = tmp_path / "mac.v"
    out.write_text("// the old, good Verilog\n")
    assert_one_line_error(*invoke("verilog", "--unit", "nvfp4", "--block-size", "1", "-o", out))
    assert out.read_text() == "// the old, good Verilog\n" and _leftovers(tmp_path) == []


@pytest.fixture
def tiny_fs(tmp_path):
    """A 256 KiB tmpfs, where the machine lets this process mount one (root, no container
    restriction); skipped elsewhere -- the patched-write tests above cover every machine."""
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_real_full_disk_keeps_old_files(tiny_fs, tmp_path):
    stim, quant = tiny_fs / "s.json", tiny_fs / "q.npz"
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32))
    assert invoke("stimulus", "--unit", "if4", "--random", "10", "-o", stim)[0] == 0
    assert invoke("quantize", "--format", "if4", "--input", x, "-o", quant)[0] == 0
    good = stim.read_bytes(), quant.read_bytes()
    (tiny_fs / "filler").write_bytes(bytes(256 * 1024 - 3 * len(good[0])))   # nearly full
    np.save(x, np.random.default_rng(0).standard_normal((64, 4096)).astype(np.float32))
    code, out, err = invoke("stimulus", "--unit", "if4", "--random", "100", "-o", stim)
    assert_one_line_error(code, out, err)
    assert "No space left on device" in err
    code, out, err = invoke("quantize", "--format", "if4", "--input", x, "-o", quant)
    assert_one_line_error(code, out, err)
    assert (stim.read_bytes(), quant.read_bytes()) == good
    assert sorted(p.name for p in tiny_fs.iterdir()) == ["filler", "q.npz", "s.json"]
