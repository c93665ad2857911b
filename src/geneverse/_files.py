"""Writing files so that a failure never destroys the previous version.

Every file geneverse writes (h5ad, h5mu, tables, embeddings, markdown, plots, region models,
demo outputs, cache entries) goes through :func:`atomic_path` or :func:`atomic_open`: the new
content is written to a temporary file in the same folder (``.<name>.<random>.gvtmp<suffix>``),
flushed and fsynced, then moved over the target with :func:`os.replace`, which is atomic on
POSIX and Windows. A full disk, a file-size limit, an exception, Ctrl-C or a killed process
leaves the previous file byte-identical (or absent, if there was none); only a temporary file
can be left behind, by SIGKILL or power loss, and :func:`orphans` finds those.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

#: Marks temporary files in their names (``.<name>.<random>.gvtmp<suffix>``).
TEMP_MARK = ".gvtmp"
#: A temporary file older than this (seconds) belongs to no live writer: an orphan.
ORPHAN_AGE = 3600.0


def check_output_path(path: str | os.PathLike, what: str = "output") -> Path:
    """``path`` as a :class:`~pathlib.Path` if a file can be written there, else a ValueError naming the fix.

    Checked before any computation, so that a bad path fails in a second, not after an hour.
    A symbolic link is followed (its target is what gets replaced).

    Parameters
    ----------
    path
        The file to write.
    what
        How to call it in messages (e.g. ``"--output"``).

    Returns
    -------
    The path to write (symbolic links resolved).
    """
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise TypeError(f"{what} must be a file path (str or Path), got {path!r}.")
    target = Path(path)
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    if target.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a folder; give a file name inside it, e.g. {str(target / 'out')!r}.")
    if target.exists() and not target.stat().st_mode & 0o222:
        raise ValueError(f"{what} {str(path)!r} is read-only; make it writable (chmod u+w) or choose another path.")
    folder = target.parent
    if not folder.is_dir():
        raise ValueError(f"{what} {str(path)!r}: the folder {str(folder)!r} does not exist; create it first.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {str(path)!r}: the folder {str(folder)!r} is not writable; choose another place.")
    return target


def _umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux)."""
    with suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    umask = os.umask(0o022)  # elsewhere: the classic read-by-setting, restored at once
    os.umask(umask)
    return umask


def _new_file_mode(existing: Path) -> int:
    """Mode for the replacement: the old file's, else what ``open()`` would give (0o666 minus the umask)."""
    try:
        return existing.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _temporary_prefix(target: Path) -> str:
    """Start of the temporary files' names for ``target`` (a long name is cut, leaving room for the rest)."""
    return f".{target.name[:120]}."


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (a no-op where folders cannot be opened, e.g. Windows)."""
    with suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextmanager
def atomic_path(path: str | os.PathLike, what: str = "output") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, it replaces ``path`` atomically.

    The temporary file keeps ``path``'s suffix, so writers that infer a format from it (matplotlib,
    mudata) behave as for ``path``. Anything raised in the block (or a ``KeyboardInterrupt``)
    removes the temporary file and leaves ``path`` as it was.

    Parameters
    ----------
    path
        The file to (re)write.
    what
        How to call it in messages.

    Yields
    ------
    The temporary path to write to.

    Examples
    --------
    >>> with atomic_path("results.h5ad") as temporary:  # doctest: +SKIP
    ...     adata.write_h5ad(temporary)
    """
    target = check_output_path(path, what)
    prefix = _temporary_prefix(target)

    def ours(candidate: Path) -> bool:
        return is_temporary(candidate) and candidate.name.startswith(prefix)

    for orphan in orphans(target.parent, match=ours):  # left by an earlier killed writer
        with suppress(OSError):
            orphan.unlink()
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=TEMP_MARK + target.suffix[:16])
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(temporary, _new_file_mode(target))
        os.replace(temporary, target)
    except BaseException:
        with suppress(OSError):
            temporary.unlink()
        raise
    _fsync_folder(target.parent)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on success it is flushed, fsynced and moved over ``path``.

    Parameters
    ----------
    path
        The file to (re)write.
    mode
        ``"w"`` (text) or ``"wb"`` (binary).
    encoding
        Text encoding (ignored in binary mode).

    Yields
    ------
    The open file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}.")
    with atomic_path(path) as temporary:
        if mode == "wb":
            handle: IO[Any] = open(temporary, "wb")
        else:
            handle = open(temporary, "w", encoding=encoding, newline="")
        with handle:  # closed (so flushed) before atomic_path fsyncs and renames the file
            yield handle


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_open(path, "w") as handle:
        handle.write(text)
    return Path(path)


def write_table(frame: Any, path: str | os.PathLike, **to_csv: Any) -> Path:
    """Write a DataFrame with :meth:`pandas.DataFrame.to_csv` atomically; returns the path.

    Compression follows ``path``'s suffix (``.gz``, ``.bz2``, ``.xz``, ``.zip``, ``.zst``) as in pandas.
    """
    from pandas.io.common import infer_compression

    target = check_output_path(path)
    to_csv.setdefault("compression", infer_compression(str(target), "infer"))
    with atomic_path(target) as temporary:
        frame.to_csv(temporary, **to_csv)
    return Path(path)


def write_h5ad(adata: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Write an AnnData (``.h5ad``) or MuData (``.h5mu``) atomically, even over the file it was read from.

    ``write_h5ad`` truncates its target before writing, so a failure midway destroys the previous
    file; here the previous file stays intact until the new one is complete. A backed object's
    own file cannot be replaced under it: write it elsewhere, or load it with ``.to_memory()``.

    Parameters
    ----------
    adata
        AnnData or MuData.
    path
        The file.
    **kwargs
        Passed to ``write_h5ad`` / ``write_h5mu`` (e.g. ``compression="gzip"``).

    Returns
    -------
    The path written.
    """
    target = check_output_path(path)
    backing = getattr(adata, "filename", None)
    if getattr(adata, "isbacked", False) and backing is not None and Path(backing).resolve() == target.resolve():
        raise ValueError(
            f"{str(path)!r} is the file this backed object reads from; write to another path, "
            "or call `.to_memory()` first."
        )
    _check_keys(adata)
    with atomic_path(target) as temporary:
        writer = getattr(adata, "write_h5mu", None) if target.suffix == ".h5mu" else None
        (writer or adata.write_h5ad)(temporary, **kwargs)
        _check_hdf5(temporary)
    if getattr(adata, "isbacked", False):
        # anndata points a backed object at the copy it wrote: that copy now lives at ``target``
        adata.file.filename = target
    return Path(path)


def _check_keys(data: Any) -> None:
    """Keys with ``/`` would be written as nested HDF5 groups that cannot be read back: refuse them first."""
    containers = [data, *getattr(data, "mod", {}).values()]
    for container in containers:
        for slot in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
            mapping = getattr(container, slot, None)
            if mapping is None:
                continue
            stack = [(slot, mapping)]
            while stack:
                where, current = stack.pop()
                for key, value in current.items():
                    if "/" in str(key):
                        raise ValueError(
                            f"{where}[{str(key)!r}]: a key with '/' cannot be stored in an h5ad/h5mu file; "
                            "rename it (e.g. with '_') before writing."
                        )
                    if slot == "uns" and isinstance(value, dict):
                        stack.append((f"{where}[{str(key)!r}]", value))


def _check_hdf5(path: Path) -> None:
    """A look at a freshly written file before it replaces anything: readable, and every group encoded.

    h5py only logs some write errors, and a group without an ``encoding-type`` cannot be read back
    by anndata; walking the tree reads no data, so this is cheap even for large files.
    """
    import h5py

    unencoded: list[str] = []

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Group) and "encoding-type" not in item.attrs and name != "mod":
            unencoded.append(name)

    try:
        with h5py.File(path, "r") as handle:
            if "encoding-type" not in handle.attrs:
                unencoded.append("/")
            handle.visititems(visit)
    except OSError as error:
        raise OSError(f"the file written to {path.name} cannot be read back ({error}); nothing was replaced") from None
    if unencoded:
        raise OSError(
            f"the file written to {path.name} is incomplete or unreadable (groups without an encoding: "
            f"{unencoded[:5]}); nothing was replaced"
        )


def save_figure(figure: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """``figure.savefig(path)`` atomically; the format comes from ``path``'s suffix (PNG, PDF, SVG ...).

    A path without a suffix gets matplotlib's default format (``rcParams["savefig.format"]``), written
    to exactly that path.
    """
    import matplotlib

    target = check_output_path(path, "save")
    kwargs.setdefault("format", target.suffix.lstrip(".").lower() or matplotlib.rcParams["savefig.format"])
    with atomic_path(target, "save") as temporary:
        figure.savefig(temporary, **kwargs)
    return Path(path)


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is one of our temporary files (by name)."""
    return path.name.startswith(".") and TEMP_MARK in path.name


def orphans(
    folder: str | os.PathLike, age: float = ORPHAN_AGE, *, match: Callable[[Path], bool] | None = None
) -> list[Path]:
    """Temporary files in ``folder`` older than ``age`` seconds: left by a killed process, safe to delete.

    Parameters
    ----------
    folder
        Where to look (not recursive).
    age
        Minimum age in seconds; younger files may belong to a writer that is still running.
    match
        Which files count as temporary (default :func:`is_temporary`: ours).

    Returns
    -------
    Their paths, sorted.
    """
    directory = Path(folder)
    if not directory.is_dir():
        return []
    now = time.time()
    found = []
    for path in directory.iterdir():
        if not (match or is_temporary)(path):
            continue
        with suppress(OSError):
            if now - path.stat().st_mtime > age:
                found.append(path)
    return sorted(found)
