"""Writing outputs safely: every file chiplex writes goes through `atomic_write_text`.

A write goes to a temporary file in the destination's directory, is flushed to disk, and then renamed
over the destination (`os.replace`, atomic on POSIX). A full disk, a crash or Ctrl-C therefore leaves
either the old file or the new one, never a truncated mix; an OSError becomes a ChiplexError naming
the path. `prepare_output_dir` gives `chiplex compile` an output directory that never mixes two runs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from chiplex.errors import ChiplexError


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def check_writable_file(path: str | Path, *, force: bool, what: str = "output") -> Path:
    """Refuse early (before any work) an output path that cannot be written or must not be replaced."""
    path = Path(path)
    if path.is_dir():
        raise ChiplexError(f"cannot write {what} {path}: it is a directory")
    if path.exists() and not force:
        raise ChiplexError(f"refusing to overwrite {path}: pass --force or choose another path")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise ChiplexError(f"cannot write {what} {path}: {parent} is not a directory")
    if not parent.exists():
        # A missing parent is created at write time; an ancestor that is a file is an error now.
        for ancestor in parent.parents:
            if ancestor.exists():
                if not ancestor.is_dir():
                    raise ChiplexError(f"cannot write {what} {path}: {ancestor} is not a directory")
                break
    return path


FILE_SUFFIXES = (".mlir", ".json", ".toml", ".pt", ".txt")
"""Suffixes of the files chiplex writes or reads: an output directory named so is a slip."""


def check_ir_output_name(path: str | Path, contents: str) -> Path:
    """An `-o` receiving MLIR text must be named `.mlir` or have no suffix: `x.json` holding IR would
    mislead every reader (a suffix is how people and tools pick the format). `contents` says what
    is written."""
    path = Path(path)
    if path.suffix not in ("", ".mlir"):
        raise ChiplexError(
            f"-o {path}: the output is MLIR text ({contents}); name the file "
            f"with .mlir, e.g. -o {path.with_suffix('.mlir') if path.name else 'out.mlir'}"
        )
    return path


def check_output_dir_name(path: str | Path, contents: str) -> Path:
    """An `-o` naming a directory must not look like a file (`x.json`, `x.mlir`) unless the
    directory exists already: creating a directory `x.json` is never what was meant."""
    path = Path(path)
    if path.suffix in FILE_SUFFIXES and not path.is_dir():
        raise ChiplexError(
            f"-o {path}: -o names a directory ({contents}), but {path.name} looks like "
            f"a file name: give a directory, e.g. -o {path.with_suffix('')}"
        )
    return path


def atomic_write_text(path: str | Path, text: str, *, make_parents: bool = True) -> None:
    """Replace `path` with `text` (UTF-8) atomically; ChiplexError if it cannot be written."""
    atomic_write_bytes(path, text.encode("utf-8"), make_parents=make_parents)


def atomic_write_bytes(path: str | Path, data: bytes, *, make_parents: bool = True) -> None:
    path = Path(path)
    try:
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise ChiplexError(f"cannot write {path}: it is a directory")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise ChiplexError(f"cannot write {path}: {_reason(err)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; outputs get the permissions an ordinary open() would give.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ChiplexError(f"cannot write {path}: {_reason(err)}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def prepare_output_dir(out: str | Path, names: Iterable[str], *, force: bool) -> Path:
    """Check that `out` can receive the files `names` before any work is done.

    Without `force`, any of `names` already present is an error (nothing the user has is replaced).
    With `force`, every one of `names` left over from an earlier run is removed at `finish_output_dir`
    time unless the new run writes it again, so the directory never mixes two runs.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ChiplexError(f"cannot use {out} as the output directory: it is a file")
    for ancestor in out.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise ChiplexError(f"cannot create output directory {out}: {ancestor} is a file")
            if not os.access(ancestor, os.W_OK | os.X_OK) and not out.exists():
                raise ChiplexError(
                    f"cannot create output directory {out}: {ancestor} is not writable"
                )
            break
    existing = [str(out / name) for name in names if (out / name).exists()]
    if existing and not force:
        raise ChiplexError(
            f"refusing to overwrite {', '.join(existing)}: pass --force or choose another -o"
        )
    for name in names:
        if (out / name).is_dir():
            raise ChiplexError(f"cannot write {out / name}: it is a directory")
    return out


def write_outputs(out: str | Path, files: dict[str, str], stale: Iterable[str]) -> list[Path]:
    """Write `files` (name -> text) into `out` atomically and remove any of `stale` not written now.

    Every file is first written to a temporary name; only when all of them are complete are they renamed
    into place, so a failure part-way leaves the previous run's files untouched.
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ChiplexError(f"cannot create output directory {out}: {_reason(err)}") from None
    staged: list[tuple[str, Path]] = []
    try:
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
            staged.append((name, Path(tmp)))
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
    except OSError as err:
        for _, tmp in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise ChiplexError(f"cannot write into {out}: {_reason(err)}") from None
    except BaseException:
        for _, tmp in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    written = []
    try:
        for name, tmp in staged:
            os.replace(tmp, out / name)
            written.append(out / name)
        for name in stale:
            if name not in files and (out / name).is_file():
                (out / name).unlink()
    except OSError as err:
        raise ChiplexError(f"cannot write into {out}: {_reason(err)}") from None
    return written
