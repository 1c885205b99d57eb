"""Writing files and output directories without ever losing one: dnnreg never deletes or
replaces what it did not write, and a crash or a kill leaves the old output or the new
one at the path, never neither and never half of one.

How an output directory is written (:func:`output_dir`):

1. **Checked first**, before any work (:func:`check_output_dir`): an absent path or an
   empty directory is fine; an earlier dnnreg output is replaced only when asked
   (``overwrite=True``, the CLI's ``--overwrite``); anything else (a user's directory, a
   regular file, a symlink) is refused with one line naming the path and the fix.
2. **Written beside it**: a hidden sibling ``.NAME.dnnreg-tmp-PID-RAND`` holding a marker
   file, :data:`MARKER`, from its first moment, so a leftover is recognisable as ours.
3. **Committed**: every file and directory is ``fsync``ed, the marker is rewritten with
   the manifest (every file's relative path and size), and the temp directory takes the
   path's place in one ``renameat2(RENAME_EXCHANGE)`` (or ``RENAME_NOREPLACE`` when the
   path is absent). Where the OS has no exchange rename, two renames are used instead and
   the next write restores the old output if a kill fell between them.
4. **The old output is removed by its manifest**, file by file: anything in it that the
   manifest does not list (a notes file added meanwhile) is kept, and the directory is
   then left visible as ``NAME.replaced-PID`` with a warning, never deleted.

Leftovers of a killed write (``.NAME.dnnreg-*`` siblings holding our marker, of a process
that is no longer running) are removed at the next write to the same path.

Permissions follow the umask: files are created with mode 0666 and directories with
0777, both less the umask, as ``open`` and ``mkdir`` do (``tempfile`` would give
0600/0700). The manifest compares sizes, not checksums: an appended or truncated file is
treated as the user's, while reading every byte of a large run at each write is not paid.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fnmatch
import json
import os
import secrets
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from dnnreg.notices import warn

MARKER = ".dnnreg.json"
"""The file that marks a directory as a dnnreg output: its kind and its manifest."""

_TAG = ".dnnreg-"
_active: set[str] = set()  # temp paths this process is writing now: never "leftovers"

# Outputs written before the marker existed: a config.json carrying dnnreg's keys, and
# the fixed file set those versions wrote.
_LEGACY_MODEL = ("config.json", "preprocessor.json", "weights.safetensors")
_LEGACY_RUN = (
    "config.json",
    "history.json",
    "metrics.json",
    "predictions.csv",
    "importance.json",
    "report.html",
)


class OutputExistsError(FileExistsError):
    """The output path holds something dnnreg may not replace (or may only with overwrite)."""


class StorageError(OSError):
    """Writing an output failed in the file system (no such folder, no permission, a full
    or read-only disk); the message names the output path, never a temp file."""


def _storage_error(path: Path, err: OSError, tmp: Path) -> OSError:
    """``err`` as a :class:`StorageError` naming ``path`` when it came from writing it (or
    its temp sibling); other errors unchanged."""
    if isinstance(err, (OutputExistsError, StorageError)):
        return err
    name = str(err.filename or "")
    if name and str(tmp) not in name and str(path) not in name and name != str(path.parent):
        return err  # not ours: e.g. a file the caller read while filling the output
    reason = err.strerror or str(err)
    fix = {
        errno.ENOSPC: "free space or choose another disk",
        errno.EROFS: "the file system is read-only; choose a writable path",
        errno.EACCES: "check the folder's permissions or choose another path",
        errno.EPERM: "check the folder's permissions or choose another path",
        errno.ENOENT: "check that its folder exists",
    }.get(err.errno, "check the path, its permissions and the free space")
    out = StorageError(f"cannot write {str(path)!r}: {reason}; {fix} (nothing was changed there)")
    out.errno = err.errno
    return out


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _storage_error(path, err, path) from err


class OutputBusyError(OutputExistsError):
    """Another running process is writing the same output path."""


# ---------------------------------------------------------------------- one writer at a time
_held: dict[str, int] = {}  # lock files this process holds, with their nesting depth


def _lock_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{_TAG}lock")


def _is_lock(name: str) -> bool:
    return name.startswith(".") and name.endswith(f"{_TAG}lock")


@contextmanager
def lock(path):
    """Hold ``path`` for this process: a second process writing it meanwhile gets
    :class:`OutputBusyError` ("being written by process N") instead of interleaving.

    The lock is an ``flock`` on a hidden sibling ``.NAME.dnnreg-lock`` holding the
    writer's pid. The kernel releases it when the process dies however it dies, so a
    lock of a killed process is never stale: the next writer simply takes it. Re-entrant
    within a process (a run's commit inside its training); outputs nested inside one being
    written need none. Where ``fcntl`` does not exist (Windows) nothing is locked."""
    path = Path(path)
    name = _lock_name(path)
    key = str(name.absolute())
    if _inside_active(path):
        yield
        return
    if key in _held:  # this process holds it already
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    made = [p for p in path.parents if not p.exists()]  # removed again if left empty
    _make_parent(path)
    fd = _acquire(name, path)
    _held[key] = 1
    try:
        yield
    finally:
        _held.pop(key, None)
        if fd is not None:
            name.unlink(missing_ok=True)  # still held: a waiting writer makes a new one
            os.close(fd)
        for parent in made:  # innermost first: a failed command leaves no empty folders
            _rmdir_if_empty(parent)


def _acquire(name: Path, path: Path) -> int | None:
    try:
        import fcntl
    except ImportError:
        return None
    for _ in range(100):
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise _storage_error(path, err, name) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another process holds it
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutputBusyError(
                f"{str(path)!r} is being written by process {holder}; wait for it to "
                "finish, or choose another path"
            ) from None
        try:
            ours = os.fstat(fd).st_ino == os.stat(name).st_ino
        except FileNotFoundError:
            ours = False
        if ours:
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            except OSError as err:  # a full disk: refuse here, naming the output
                name.unlink(missing_ok=True)
                os.close(fd)
                raise _storage_error(path, err, name) from err
            return fd
        os.close(fd)  # its holder removed it as we opened it: take the new one
    raise OutputBusyError(f"{str(path)!r} is contended by other writers; try again")


# ---------------------------------------------------------------------- what a path holds
def _read_marker(directory: Path) -> dict | None:
    try:
        marker = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and "dnnreg_output" in marker else None


def _legacy_marker(directory: Path) -> dict | None:
    """A marker for a run or model directory written before markers existed."""
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or "dnnreg_version" not in config:
        return None
    if "format_version" in config:
        return {"dnnreg_output": "model", "files": {f: None for f in _LEGACY_MODEL}}
    return {"dnnreg_output": "run", "files": {f: None for f in _LEGACY_RUN}}


def marker_of(directory) -> dict | None:
    """The marker of a dnnreg output directory (``None`` if it is not one)."""
    directory = Path(directory)
    if directory.is_symlink() or not directory.is_dir():
        return None
    return _read_marker(directory) or _legacy_marker(directory)


def foreign_entries(directory: Path, marker: dict | None = None) -> list[str]:
    """The entries under ``directory`` that its manifest does not account for: files it
    does not list or whose size differs, symlinks, directories holding such entries. A
    subdirectory with a marker of its own (a model inside a run) answers for itself."""
    marker = marker or marker_of(directory) or {"files": {}}
    files, transient = marker.get("files", {}), marker.get("transient", [])
    foreign = []
    for entry in sorted(directory.iterdir()):
        name = entry.name
        if name == MARKER or _leftover_pid(name) is not None or _is_lock(name):
            continue  # the marker, our own temp files of an interrupted rewrite, a lock
        if any(fnmatch.fnmatch(name, pattern) for pattern in transient):
            continue
        if entry.is_symlink():
            foreign.append(name)
        elif entry.is_dir():
            inner = _read_marker(entry) or _legacy_marker(entry)
            if inner is None:  # a plain subdirectory: the outer manifest lists its files
                prefix = name + "/"
                inner = {
                    "files": {k[len(prefix) :]: v for k, v in files.items() if k.startswith(prefix)}
                }
            foreign += [f"{name}/{e}" for e in foreign_entries(entry, inner)]
        elif name not in files or (files[name] is not None and entry.stat().st_size != files[name]):
            foreign.append(name)
    return foreign


def _describe(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_output_dir(
    path, *, overwrite: bool = False, flag: str = "overwrite=True", resume: bool = False
) -> dict | None:
    """Refuse an output directory path dnnreg may not write, before any work is done.

    Fine: an absent path, an empty directory, an earlier dnnreg output with
    ``overwrite`` (or, with ``resume``, one to continue). Refused with
    :class:`OutputExistsError`: a regular file, a symlink, a directory dnnreg did not
    write, an earlier output without ``overwrite``, an earlier output that also holds
    files of the user's. ``flag`` is how the caller spells the overwrite switch in the
    message. Returns the existing output's marker, or ``None``.
    """
    path = Path(path)
    if path.is_symlink():
        raise OutputExistsError(
            f"{str(path)!r} is a symbolic link; dnnreg writes only to "
            "a path of its own, choose a new path"
        )
    if not path.exists():
        return None
    if not path.is_dir():
        raise OutputExistsError(
            f"{str(path)!r} is an existing file, not a dnnreg output; "
            "choose a new path (dnnreg never replaces what it did not "
            "write)"
        )
    marker = marker_of(path)
    if marker is None:
        entries = sorted(e.name for e in path.iterdir())
        if not entries:
            return None
        raise OutputExistsError(
            f"{str(path)!r} is an existing directory that dnnreg did not write (it holds "
            f"{_describe(entries)}); choose a new path, such as {str(path / 'run')!r}"
        )
    foreign = foreign_entries(path, marker)
    kind = marker["dnnreg_output"]
    if foreign:
        raise OutputExistsError(
            f"{str(path)!r} is a dnnreg {kind} but also holds "
            f"{_describe(foreign)}, which dnnreg did not write; move "
            "them out or choose a new path"
        )
    if not (overwrite or resume):
        raise OutputExistsError(
            f"{str(path)!r} holds an earlier dnnreg {kind}; pass {flag} "
            "to replace it, or choose a new path"
        )
    return marker


def check_output_file(path, *, overwrite: bool = False, flag: str = "overwrite=True") -> None:
    """Refuse a file path dnnreg may not write: a directory always, an existing file
    unless ``overwrite``. The parent directory is created when the file is written."""
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(
            f"{str(path)!r} is a directory; name a file to write, such as {str(path / 'out')!r}"
        )
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputExistsError(
            f"{str(path)!r} already exists; pass {flag} to replace it, or choose a new path"
        )


# ---------------------------------------------------------------------- low-level moves
def _libc_renameat2():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


_RENAMEAT2 = _libc_renameat2() if os.name == "posix" else None
_AT_FDCWD, _NOREPLACE, _EXCHANGE = -100, 1, 2


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``; False where the OS or file system lacks it."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(dst))


def exchange(a: Path, b: Path) -> None:
    """Swap two existing paths in one atomic step (Linux ``RENAME_EXCHANGE``).

    Raises ``NotImplementedError`` where the OS has no such rename."""
    if not _renameat2(a, b, _EXCHANGE):
        raise NotImplementedError("no atomic exchange rename here")


def rename_noreplace(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, failing with ``FileExistsError`` if ``dst`` exists."""
    if _renameat2(src, dst, _NOREPLACE):
        return
    if dst.exists() or dst.is_symlink():  # no atomic check here: a small race is left
        raise FileExistsError(errno.EEXIST, "exists", str(dst))
    os.rename(src, dst)


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's contents to disk (directories: their entries)."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # e.g. directories cannot be opened on Windows: nothing to flush
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # file systems without fsync (some FUSE mounts) accept the write as is
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            fsync_path(Path(directory) / name)
        fsync_path(Path(directory))


def _inside_active(path: Path) -> bool:
    """True when ``path`` lies in a temp directory this process is still filling: nobody
    sees it before its commit, which fsyncs the whole tree, so the files written inside
    need no flush (nor leftover scan) of their own."""
    return any(str(parent) in _active for parent in path.parents)


def _sibling(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}{_TAG}{tag}-{os.getpid()}-{secrets.token_hex(4)}")


# ---------------------------------------------------------------------- single files
def write_file(path, data: bytes, *, overwrite: bool = False, flag: str = "overwrite=True") -> Path:
    """Write ``data`` to the file ``path``: a temp file beside it, ``fsync``ed, then renamed
    into place, so a reader sees the old file or the new one, never half of one.

    An existing file is replaced only with ``overwrite`` (otherwise
    :class:`OutputExistsError`); a directory is never replaced. The path is
    :func:`lock`-ed meanwhile.
    """
    with lock(path):
        return _write_file(Path(path), data, overwrite=overwrite, flag=flag)


def _write_file(path: Path, data: bytes, *, overwrite: bool, flag: str) -> Path:
    check_output_file(path, overwrite=overwrite, flag=flag)
    _make_parent(path)
    durable = not _inside_active(path)  # else the enclosing commit flushes it
    if durable:
        clean_leftovers(path)
    tmp = _sibling(path, "tmp")
    with _writing(path, tmp, lambda: tmp.unlink(missing_ok=True)):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        _place(tmp, path, overwrite=overwrite, flag=flag, durable=durable)
    return path


@contextmanager
def _writing(path: Path, tmp: Path, cleanup):
    """While ``tmp`` is being written for ``path``: it is ours (never a leftover); on any
    failure ``cleanup`` removes it and a storage error names ``path``, not the temp."""
    _active.add(str(tmp))
    try:
        yield
    except BaseException as err:
        cleanup()
        if isinstance(err, OSError):
            mapped = _storage_error(path, err, tmp)
            if mapped is not err:
                raise mapped from err
        raise
    finally:
        _active.discard(str(tmp))


def _place(tmp: Path, path: Path, *, overwrite: bool, flag: str, durable: bool) -> None:
    """Rename a complete temp file into place (replacing a file only with ``overwrite``)."""
    if overwrite:
        check_output_file(path, overwrite=True, flag=flag)  # it may be a dir by now
        os.replace(tmp, path)
    else:
        try:
            rename_noreplace(tmp, path)
        except FileExistsError:
            raise OutputExistsError(
                f"{str(path)!r} appeared while dnnreg was writing it; pass {flag} to "
                "replace it, or choose a new path"
            ) from None
    if durable:
        fsync_path(path.parent)


@contextmanager
def output_file(path, *, overwrite: bool = False, flag: str = "overwrite=True"):
    """:func:`write_file` for a file written in pieces (streamed predictions): yields the
    temp path beside ``path`` for any writer to fill (``open``, pyarrow's ParquetWriter);
    on success it is flushed and renamed into place, on failure removed, and ``path`` is
    untouched. Locked meanwhile."""
    path = Path(path)
    with lock(path):
        check_output_file(path, overwrite=overwrite, flag=flag)
        _make_parent(path)
        clean_leftovers(path)
        tmp = _sibling(path, "tmp")
        with _writing(path, tmp, lambda: tmp.unlink(missing_ok=True)):
            yield tmp
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            _place(tmp, path, overwrite=overwrite, flag=flag, durable=True)


def write_text(path, text: str, **kwargs) -> Path:
    """:func:`write_file` for UTF-8 text."""
    return write_file(path, text.encode("utf-8"), **kwargs)


def write_json(path, obj, **kwargs) -> Path:
    """:func:`write_file` for JSON (NaN and infinity refused: they are not JSON)."""
    return write_text(path, json.dumps(obj, indent=1, allow_nan=False) + "\n", **kwargs)


# ---------------------------------------------------------------------- directories
def _manifest(root: Path) -> dict:
    """Every file under ``root`` (but markers) with its size, by relative POSIX path."""
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            p = Path(directory) / name
            if name != MARKER:
                files[p.relative_to(root).as_posix()] = p.stat().st_size
    return files


def _mark(directory: Path, kind: str, state: str, **extra) -> None:
    marker = {"dnnreg_output": kind, "state": state, "pid": os.getpid(), **extra}
    write_json(directory / MARKER, marker, overwrite=True)


def make_output_dir(
    path, *, kind: str, files: dict | None = None, transient=(), state: str = "complete"
) -> Path:
    """Create ``path`` as an empty, marked dnnreg output of ``kind`` (for outputs that grow
    in place, like a tuning study's journal, or a run's checkpoint while it trains, in
    ``state`` "training"). ``files`` are names it will own, with their size or ``None`` (a
    file that grows); ``transient`` are glob patterns of files that come and go (lock
    files) and are the output's own."""
    path = Path(path)
    _make_parent(path)
    try:
        os.mkdir(path, 0o777)
    except OSError as err:
        raise _storage_error(path, err, path) from err
    _mark(path, kind, state, files=dict(files or {}), transient=list(transient))
    fsync_path(path.parent)
    return path


def register(directory, relpath: str, *, size: int | None | bool = True) -> None:
    """Record in an output directory's manifest a file dnnreg wrote into it (``size``:
    True for its current size, ``None`` for a file that grows, like a journal)."""
    directory = Path(directory)
    marker = marker_of(directory)
    if marker is None:
        raise OutputExistsError(f"{str(directory)!r} is not a dnnreg output")
    files = dict(marker.get("files", {}))
    files[relpath] = (directory / relpath).stat().st_size if size is True else size
    extra = {k: v for k, v in marker.items() if k not in ("dnnreg_output", "state", "pid", "files")}
    _mark(directory, marker["dnnreg_output"], "complete", files=files, **extra)


def write_owned(directory, relpath: str, data: bytes) -> Path:
    """Write (or rewrite) a file dnnreg owns inside its output ``directory`` and record it:
    a file of that name that dnnreg did not write is refused, never replaced."""
    directory = Path(directory)
    marker = marker_of(directory)
    target = directory / relpath
    if marker is None:
        raise OutputExistsError(f"{str(directory)!r} is not a dnnreg output; choose a new path")
    if target.exists() and relpath in foreign_entries(directory, marker):
        raise OutputExistsError(
            f"{str(target)!r} was not written by dnnreg; move it out or choose a new path"
        )
    write_file(target, data, overwrite=True)
    register(directory, relpath)
    return target


@contextmanager
def output_dir(path, **kwargs):
    """Yield a fresh temp directory to fill; on success it takes ``path``'s place (see the
    module docstring), on any failure it is removed and ``path`` is untouched. The path is
    :func:`lock`-ed meanwhile. Keywords: ``kind`` (``"run"``, ``"model"``,
    ``"compare"``..., named in the marker and in messages), ``overwrite``, ``flag``,
    ``files`` and ``transient`` (as in :func:`make_output_dir`)."""
    with lock(path), _output_dir(path, **kwargs) as tmp:
        yield tmp


@contextmanager
def _output_dir(
    path,
    *,
    kind: str,
    overwrite: bool = False,
    flag: str = "overwrite=True",
    files: dict | None = None,
    transient=(),
):
    """:func:`output_dir` under its lock. The path is checked before the temp directory is
    made and again before it is committed (something may have appeared there meanwhile)."""
    path = Path(path)
    check_output_dir(path, overwrite=overwrite, flag=flag)
    _make_parent(path)
    clean_leftovers(path)
    tmp = _sibling(path, "tmp")

    def remove_temp():
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)  # our own half-written temp directory

    with _writing(path, tmp, remove_temp):
        os.mkdir(tmp, 0o777)  # the umask applies, unlike tempfile.mkdtemp's 0700
        _mark(tmp, kind, "writing")
        yield tmp
        _mark(
            tmp,
            kind,
            "complete",
            files={**(files or {}), **_manifest(tmp)},
            transient=list(transient),
        )
        if not _inside_active(path):  # a nested output is flushed with the enclosing one
            _fsync_tree(tmp)
        _commit(tmp, path, overwrite=overwrite, flag=flag)


def _commit(tmp: Path, path: Path, *, overwrite: bool, flag: str) -> None:
    """Put the complete ``tmp`` at ``path``; remove what was there by its manifest."""
    try:
        old = check_output_dir(path, overwrite=overwrite, flag=flag)
    except OutputExistsError as err:
        kept = path.with_name(f"{path.name}.new-{os.getpid()}")
        os.rename(tmp, kept)
        raise OutputExistsError(
            f"{err} (this changed while dnnreg ran; the new output was kept at {str(kept)!r})"
        ) from None
    if not path.exists():
        rename_noreplace(tmp, path)
    else:
        try:
            exchange(tmp, path)  # tmp now holds the old output
        except NotImplementedError:
            aside = _sibling(path, "old")
            os.rename(path, aside)  # a kill here leaves no output: restored at next write
            os.rename(tmp, path)
            tmp = aside
    if not _inside_active(path):
        fsync_path(path.parent)
    if old is None:  # it was absent, or an empty directory
        _rmdir_if_empty(tmp)
    else:
        remove_output(tmp, visible_name=path.with_name(f"{path.name}.replaced-{os.getpid()}"))


def remove_output(directory: Path, *, visible_name: Path | None = None) -> None:
    """Delete a dnnreg output by its manifest: listed files (and empty directories) go,
    the marker last, anything else stays. If something stays, the directory is renamed
    to ``visible_name`` (when given) and a warning names it."""
    marker = marker_of(directory)
    if marker is None:
        return
    if marker.get("state") == "writing":  # a killed write's temp: every byte is ours
        shutil.rmtree(directory, ignore_errors=True)
        return
    foreign = set(foreign_entries(directory, marker))
    for sub, _, files in os.walk(directory, topdown=False):
        sub = Path(sub)
        for name in files:
            rel = (sub / name).relative_to(directory).as_posix()
            if name != MARKER and rel not in foreign and not (sub / name).is_symlink():
                (sub / name).unlink()
        if sub != directory:
            (sub / MARKER).unlink(missing_ok=True)
            _rmdir_if_empty(sub)
    if any(p.name != MARKER for p in directory.iterdir()):
        kept = directory
        if visible_name is not None:
            os.rename(directory, visible_name)
            kept = visible_name
        warn(
            f"{str(kept)!r} kept files dnnreg did not write ({_describe(sorted(foreign))}); "
            "the rest of the replaced output was removed"
        )
        return
    (directory / MARKER).unlink(missing_ok=True)
    _rmdir_if_empty(directory)


def _rmdir_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass  # not empty: it holds something that is not ours


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no safe liveness probe (os.kill would terminate): never clean
    if pid == os.getpid():
        return False  # ours but not active: a write of this process that was interrupted
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by another user
    return True


def _leftover_pid(name: str) -> int | None:
    """The writer's pid when ``name`` is a temp or replaced sibling of dnnreg's making
    (``.NAME.dnnreg-tmp-PID-RAND``) whose writer is no longer running, else ``None``."""
    head, sep, tail = name.rpartition(_TAG)
    parts = tail.split("-")
    if not (
        sep
        and head.startswith(".")
        and len(parts) == 3
        and parts[0] in ("tmp", "old")
        and parts[1].isdigit()
        and len(parts[2]) == 8
    ):
        return None
    pid = int(parts[1])
    return None if _pid_alive(pid) else pid


def leftovers(path) -> list[Path]:
    """dnnreg's own temp and replaced siblings of ``path`` that no running process owns."""
    path = Path(path)
    found = []
    prefix = f".{path.name}{_TAG}"
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        if entry.is_symlink() or str(entry) in _active:
            continue
        if entry.name.startswith(prefix) and _leftover_pid(entry.name) is not None:
            if entry.is_dir() and marker_of(entry) is None:
                continue  # a directory of that name without our marker: not ours
            found.append(entry)
        elif _is_legacy_leftover(entry, path.name):
            found.append(entry)
    return sorted(found)


def _is_legacy_leftover(entry: Path, name: str) -> bool:
    """A temp (``.NAME.tmp-XXXXXXXX``, tempfile's) or replaced (``.NAME.old-PID``) run or
    model directory of dnnreg 0.1's writer, which carried no marker: recognised by its
    config.json, and for a temp by being a day old (it named no pid to ask about)."""
    tail = entry.name[len(name) + 1 :] if entry.name.startswith(f".{name}.") else ""
    if not (tail.startswith(".old-") or tail.startswith(".tmp-")) or not entry.is_dir():
        return False
    if _read_marker(entry) is not None or _legacy_marker(entry) is None:
        return False
    if tail.startswith(".old-"):
        return tail[5:].isdigit() and not _pid_alive(int(tail[5:]))
    return len(tail) == 13 and time.time() - entry.stat().st_mtime > 86400


def clean_leftovers(path) -> None:
    """Remove the :func:`leftovers` of ``path``. If a kill fell between two renames (the
    fallback replace without an exchange rename, or dnnreg 0.1's writer) and left no output
    at ``path``, the replaced output is first put back."""
    path = Path(path)
    for entry in leftovers(path):
        if not entry.is_dir():
            entry.unlink(missing_ok=True)
            continue
        aside = f"{_TAG}old-" in entry.name or entry.name.startswith(f".{path.name}.old-")
        if aside and not path.exists() and marker_of(entry).get("state", "complete") == "complete":
            os.rename(entry, path)
            continue
        remove_output(entry)
