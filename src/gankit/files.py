"""Files that are never half-written, and output paths checked before any work is done.

``atomic_path``: a reader, or a crash mid-write, sees the old file or the new one.
``check_output_file`` / ``check_output_dir``: the one check every command and API call makes of
an output path before it spends minutes computing what goes there: a folder where a file is
wanted (or the reverse), a parent that is a file, a folder the system will not let us write.
They create nothing; the write itself makes the missing folders.
``remove_stale_temporaries``: what a killed ``atomic_path`` write left behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

_TMP_RE = re.compile(r"^\..+\.(\d+)\.tmp$")  # .<name>.<pid>.tmp
NAME_MAX = 255  # bytes in one path component on the common file systems


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; when the block ends without an error it is
    renamed over ``path`` (atomic on POSIX and Windows), otherwise removed. The name holds the
    process id, so two processes writing the same file never share a temporary."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process
    return True


def remove_stale_temporaries(folders: Iterable[Path]) -> list[Path]:
    """Remove the ``atomic_path`` temporaries in ``folders`` whose writer is no longer alive."""
    removed = []
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        for p in Path(folder).iterdir():
            m = _TMP_RE.match(p.name)
            if m and p.is_file() and not _pid_alive(int(m.group(1))):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_names(path: Path, flag: str) -> None:
    """Every part of ``path`` fits the file system (before any call that would raise on it)."""
    too_long = [part for part in path.parts if len(part.encode()) > NAME_MAX]
    if too_long:
        raise UserError(
            f"{flag}: the name {too_long[0][:40]}... is longer than {NAME_MAX} bytes; shorten it"
        )


def _check_writable(path: Path, flag: str, folder: Path) -> None:
    """``folder`` (the output's parent, maybe not yet there) can be made and written."""
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise UserError(f"{flag} {path}: {base} is a file, not a folder; choose another path")
    try:  # a real probe: os.access says yes to root on a read-only file system
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as e:
        raise UserError(
            f"{flag} {path}: cannot write in {base} ({e.strerror}); choose a folder you can write"
        ) from None


def check_output_file(
    path: str | Path, flag: str = "--out", suffixes: tuple[str, ...] = ()
) -> Path:
    """``path`` as a file gankit may write: the right suffix (any case), not a folder, in a
    folder that exists or can be made, and writable. Creates nothing."""
    p = Path(path).expanduser()
    if str(path).strip() == "":
        raise UserError(f"{flag} is empty; give a file name")
    _check_names(p, flag)
    if suffixes and p.suffix.lower() not in suffixes:
        want = " or ".join(suffixes)
        raise UserError(f"{flag} must be a {want} file, got {p.name or str(path)!r}")
    if p.is_dir():
        raise UserError(
            f"{flag} {p} is a folder; give a file name, e.g. {p / ('out' + (suffixes or ('',))[0])}"
        )
    _check_writable(p, flag, p.parent)
    return p


def check_output_dir(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a folder gankit may fill: not a file, and makeable and writable."""
    p = Path(path).expanduser()
    if str(path).strip() == "":
        raise UserError(f"{flag} is empty; give a folder name")
    _check_names(p, flag)
    if p.exists() and not p.is_dir():
        raise UserError(f"{flag} {p} is a file, not a folder; give a folder name")
    _check_writable(p, flag, p)
    return p


_SHA256: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file, computed once per (resolved path, mtime, size) in this process."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_mtime_ns, st.st_size)
    if key not in _SHA256:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _SHA256[key] = h.hexdigest()
    return _SHA256[key]
