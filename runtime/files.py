"""A command's files: outputs checked before any work (writable, never an input, never another output) and written
so that a failure keeps what was written valid."""

from __future__ import annotations

import os
import resource
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edgepipe.postprocess.errors import UserError

SPECIAL = (Path("/proc"), Path("/sys"))  # kernel files: writes fail or change the system
BAD_PATH = (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError)  # the path, not the disk


class OutputError(Exception):
    """An output that could not be written during a run (disk full, an I/O error, an encoder that failed): the run
    ends with one line naming the file and the reason, exit code 1, and what was written before stays valid."""


@dataclass(frozen=True)
class Input:
    """A file or folder a command reads, named by its option (what). A folder source's files are inputs too."""

    what: str
    path: Path


@dataclass(frozen=True)
class Output:
    """A file (folder: False) or folder (folder: True) a command writes, named by its option (what). files: for a
    folder, the paths it will write inside it when they are known beforehand (annotated copies of images)."""

    what: str
    path: Path
    folder: bool = False
    files: tuple[Path, ...] = ()


def check_outputs(outputs: Iterable[Output], inputs: Iterable[Input] = ()) -> None:
    """Refuse, before any work, every output that cannot be written or would write over an input or over another
    output (paths compared resolved, and by inode where both exist, so links do not hide it). Creates missing
    parent folders. Raises UserError naming both paths."""
    outputs, inputs = [o for o in outputs if o.path is not None], list(inputs)
    for out in outputs:
        _check_writable(out)
        for inp in inputs:
            if any(_same(target, inp.path) for target in (out.path, *out.files)):
                raise UserError(f"{out.what} {out.path} would write over the {inp.what} {inp.path}: an output must "
                                "not replace an input; choose another path")
    for k, a in enumerate(outputs):
        for b in outputs[k + 1:]:
            if _same(a.path, b.path):
                raise UserError(f"{a.what} and {b.what} are the same path {a.path}: give each output its own")


def _check_writable(out: Output) -> None:
    path = Path(out.path)
    resolved = path.resolve()
    if any(resolved == s or s in resolved.parents for s in SPECIAL):
        raise UserError(f"{out.what} {path} is a kernel file, not a file to write: choose another path")
    if out.folder and path.exists() and not path.is_dir():
        raise UserError(f"{out.what} {path} is a file: give a folder")
    if not out.folder and path.is_dir():
        raise UserError(f"{out.what} {path} is a folder: give a file path")
    folder = path if out.folder else path.parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"cannot write {out.what} {path}: {existing} is a file, not a folder; choose another path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the folder for {out.what} {path}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK) or (path.exists() and not out.folder and not os.access(path, os.W_OK)):
        raise UserError(f"cannot write {out.what} {path}: permission denied; choose another path")


def _same(a: Path, b: Path) -> bool:
    """Whether a and b name the same file or folder: resolved paths, or one inode (hard links)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def room_left(path: Path) -> int:
    """Bytes that can still be written to path: the free space of its file system for this user, and no more than
    the process's file size limit (RLIMIT_FSIZE) allows it to grow."""
    path = Path(path)
    stat = os.statvfs(path.parent)
    room = stat.f_bavail * stat.f_frsize
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        room = min(room, limit - (path.stat().st_size if path.exists() else 0))
    return max(room, 0)


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write data to path through a temporary file in the same folder, fsynced, then renamed over path: a reader
    sees the old file or the new one, never half of one, and a failure (an interrupt too) leaves the old one and no
    temporary file. The file gets the usual permissions (0666 less the umask, as open() gives); mkstemp's 0600 would
    hide it from another user's service. Raises OutputError when the write fails (a full disk, an I/O error)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: folder {path.parent} does not exist")
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        if isinstance(exc, BAD_PATH):  # a path the user must change: bad input (exit code 2)
            raise
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; what was written before is kept") from None
    return path
