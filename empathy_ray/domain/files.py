"""Atomic file and folder writes.

Readers (Ray workers, the serve app, a second CLI run) must never see a half-written file, and a
crash mid-write must not destroy the previous version, so every output (a file, or a folder such as
a saved model) goes to a temporary path in the same folder (same filesystem, so the rename is
atomic), is fsynced, then renamed over the target.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_NEW_FILE_MODE = 0o644  # mkstemp creates 0600 files; outputs are meant to be shared
_NEW_DIR_MODE = 0o755


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path` to write to; on normal exit it replaces `path`, on an
    exception it is deleted and `path` is left untouched."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else _NEW_FILE_MODE
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder next to `path` to fill (a model, a checkpoint); on normal exit it
    takes the place of `path`, on an exception it is deleted and `path` is left untouched.

    A non-empty folder cannot be renamed over another, so an existing `path` is first moved aside
    and only deleted once the new folder is in place (and put back if that rename fails)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file() and not file.is_symlink():
                with open(file, "rb") as f:
                    os.fsync(f.fileno())
        os.chmod(tmp, _NEW_DIR_MODE)
        old = target.with_name(f".{target.name}.{tmp.name}.old") if target.exists() else None
        if old is not None:
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; not every platform lets a directory be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def weights_digest(model_dir: str | os.PathLike[str]) -> str:
    """SHA-256 over a saved model's weight files (name and bytes, in name order).

    Two runs that claim the same result can be compared bit for bit: equal digests mean equal weights.
    """
    import hashlib

    h = hashlib.sha256()
    for file in sorted(Path(model_dir).glob("*.safetensors")):
        h.update(file.name.encode())
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]
