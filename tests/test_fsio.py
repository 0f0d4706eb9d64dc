"""fsio: atomic writes that never follow a planted symlink, guarded appends and reads, OSError -> UserError."""

import errno
import os

import pytest
from helpers import make_file_creation_fail

from latentquant import fsio
from latentquant.errors import UserError


@pytest.fixture
def outside(tmp_path):
    """A file outside the run directory that a planted symlink points to; its content must never change."""
    target = tmp_path / "outside.txt"
    target.write_text("precious")
    return target


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    return d


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp") or ".tmp." in p.name)


def test_atomic_write_text_creates_and_replaces(run_dir):
    path = run_dir / "report.html"
    fsio.atomic_write_text(path, "one")
    fsio.atomic_write_text(path, "twö")
    assert path.read_text(encoding="utf-8") == "twö"
    assert leftovers(run_dir) == []


@pytest.mark.parametrize("name", ["report.html", "metrics.jsonl"])
def test_symlink_at_the_old_fixed_temp_name_is_not_followed(run_dir, outside, name):
    (run_dir / f".{name}.tmp").symlink_to(outside)
    fsio.atomic_write_text(run_dir / name, "new")
    assert outside.read_text() == "precious"
    assert (run_dir / name).read_text() == "new" and not (run_dir / name).is_symlink()


def test_symlink_at_the_random_temp_name_is_skipped(run_dir, outside, monkeypatch):
    names = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(fsio, "_token", lambda: next(names))
    (run_dir / ".out.bin.aaaa.tmp").symlink_to(outside)
    fsio.atomic_write_bytes(run_dir / "out.bin", b"data")
    assert outside.read_text() == "precious"
    assert (run_dir / "out.bin").read_bytes() == b"data"
    assert (run_dir / ".out.bin.aaaa.tmp").is_symlink()  # someone else's name: left alone
    assert not (run_dir / ".out.bin.bbbb.tmp").exists()


def test_a_dangling_symlink_at_the_temp_name_is_skipped_too(run_dir, tmp_path, monkeypatch):
    names = iter(["aaaa", "bbbb"])
    monkeypatch.setattr(fsio, "_token", lambda: next(names))
    pointee = tmp_path / "would-be-created"
    (run_dir / ".out.bin.aaaa.tmp").symlink_to(pointee)
    fsio.atomic_write_bytes(run_dir / "out.bin", b"data")
    assert not pointee.exists()


def test_symlink_at_the_target_is_replaced_not_written_through(run_dir, outside):
    link = run_dir / "metrics.jsonl"
    link.symlink_to(outside)
    fsio.atomic_write_text(link, "mine")
    assert outside.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "mine"


def test_atomic_write_context_for_filename_writers(run_dir, outside, monkeypatch):
    names = iter(["aaaa", "bbbb"])
    monkeypatch.setattr(fsio, "_token", lambda: next(names))
    (run_dir / ".fig.png.aaaa.tmp.png").symlink_to(outside)
    target = run_dir / "fig.png"
    target.symlink_to(outside)
    with fsio.atomic_write(target) as tmp:
        assert tmp.parent == run_dir and tmp.suffix == ".png"  # savefig picks the format from it
        assert tmp.is_file() and not tmp.is_symlink() and tmp.stat().st_size == 0
        with open(tmp, "wb") as f:
            f.write(b"png bytes")
    assert outside.read_text() == "precious"
    assert not target.is_symlink() and target.read_bytes() == b"png bytes"
    assert not (run_dir / ".fig.png.bbbb.tmp.png").exists()


def test_atomic_write_context_failure_keeps_target_and_removes_temp(run_dir):
    target = run_dir / "fig.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), fsio.atomic_write(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"old"
    assert leftovers(run_dir) == []


def test_atomic_write_context_refuses_a_temp_swapped_for_a_symlink(run_dir, outside):
    target = run_dir / "fig.png"
    with pytest.raises(UserError, match="not a regular file"), fsio.atomic_write(target) as tmp:
        tmp.unlink()
        tmp.symlink_to(outside)
    assert not target.exists() and outside.read_text() == "precious"
    assert leftovers(run_dir) == []


def test_failed_write_leaves_target_and_no_temp(run_dir, monkeypatch):
    path = run_dir / "status.json"
    path.write_text("old")
    real_write = os.write

    def full(fd, data):
        if bytes(data).startswith(b"new"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError) as info:
        fsio.atomic_write_text(path, "new content")
    assert info.value.errno == errno.ENOSPC
    assert path.read_text() == "old"
    assert leftovers(run_dir) == []


def test_short_writes_are_completed(run_dir, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data)[:3]))
    fsio.atomic_write_bytes(run_dir / "x", b"0123456789")
    assert (run_dir / "x").read_bytes() == b"0123456789"


def test_open_append_appends(run_dir):
    path = run_dir / "metrics.jsonl"
    path.write_text("a\n")
    with fsio.open_append(path) as f:
        f.write("b\n")
    with fsio.open_append(path) as f:
        f.write("c\n")
    assert path.read_text() == "a\nb\nc\n"


def test_open_append_refuses_a_symlink(run_dir, outside):
    link = run_dir / "metrics.jsonl"
    link.symlink_to(outside)
    with pytest.raises(UserError, match="metrics.jsonl.*symbolic link"):
        fsio.open_append(link)
    assert outside.read_text() == "precious"


def test_open_append_refuses_a_fifo(run_dir):
    fifo = run_dir / "metrics.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="not a regular file"):
        fsio.open_append(fifo)  # would block forever without O_NONBLOCK


def test_read_regular_reads_a_file_inside_root(run_dir):
    (run_dir / "eval").mkdir()
    (run_dir / "eval" / "fig.png").write_bytes(b"img")
    assert fsio.read_regular(run_dir / "eval" / "fig.png", run_dir) == b"img"


def test_read_regular_refuses_a_symlink_even_to_a_file_inside(run_dir):
    (run_dir / "real.png").write_bytes(b"img")
    (run_dir / "link.png").symlink_to(run_dir / "real.png")
    with pytest.raises(UserError, match="link.png.*symbolic link"):
        fsio.read_regular(run_dir / "link.png", run_dir)


def test_read_regular_refuses_a_path_outside_root(run_dir, outside):
    with pytest.raises(UserError, match="outside.txt.*outside"):
        fsio.read_regular(outside, run_dir)
    with pytest.raises(UserError, match="outside"):
        fsio.read_regular(run_dir / ".." / "outside.txt", run_dir)


def test_read_regular_refuses_a_file_behind_a_symlinked_directory(run_dir, outside):
    (run_dir / "eval").symlink_to(outside.parent)
    with pytest.raises(UserError, match="outside"):
        fsio.read_regular(run_dir / "eval" / "outside.txt", run_dir)


def test_read_regular_refuses_missing_files_and_directories(run_dir):
    with pytest.raises(UserError, match="nope.png.*no such file"):
        fsio.read_regular(run_dir / "nope.png", run_dir)
    (run_dir / "sub").mkdir()
    with pytest.raises(UserError, match="not a regular file"):
        fsio.read_regular(run_dir / "sub", run_dir)


@pytest.mark.parametrize(("code", "expected"), [
    (errno.ENOSPC, "writing report.html: the disk is full"),
    (errno.EDQUOT, "writing report.html: the disk is full"),
    (errno.EROFS, "writing report.html: read-only file system"),
    (errno.EACCES, "writing report.html: permission denied"),
    (errno.EPERM, "writing report.html: permission denied"),
    (errno.EIO, "writing report.html: Input/output error"),
])
def test_disk_errors_map_to_one_line_user_errors(code, expected):
    with pytest.raises(UserError) as info, fsio.disk_errors("writing report.html"):
        raise OSError(code, os.strerror(code) + "\nsecond line")
    message = str(info.value)
    assert message.startswith(expected)
    assert "\n" not in message
    assert isinstance(info.value.__cause__, OSError)


def test_disk_errors_as_decorator_and_passing_other_errors_through():
    @fsio.disk_errors("saving")
    def fail(exc):
        raise exc

    with pytest.raises(UserError, match="^saving: the disk is full"):
        fail(OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(KeyError):
        fail(KeyError("not an OSError"))


def test_disk_full_during_a_real_write_is_one_line(run_dir, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UserError) as info, fsio.disk_errors(f"writing {run_dir / 'report.html'}"):
        fsio.atomic_write_text(run_dir / "report.html", "page")
    assert str(info.value) == (f"writing {run_dir / 'report.html'}: the disk is full (No space left on device); "
                               "free some space and try again")
    assert not (run_dir / "report.html").exists() and leftovers(run_dir) == []


def test_read_only_file_system_via_open(run_dir, monkeypatch):
    make_file_creation_fail(monkeypatch, errno.EROFS)
    with pytest.raises(UserError, match="read-only file system$"), fsio.disk_errors("writing status.json"):
        fsio.atomic_write_text(run_dir / "status.json", "{}")
    assert list(run_dir.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 0o555")
def test_read_only_directory(run_dir):
    run_dir.chmod(0o555)
    try:
        with pytest.raises(UserError, match="permission denied"), fsio.disk_errors("writing status.json"):
            fsio.atomic_write_text(run_dir / "status.json", "{}")
    finally:
        run_dir.chmod(0o755)
    assert list(run_dir.iterdir()) == []
