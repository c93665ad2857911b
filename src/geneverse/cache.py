"""On-disk cache of co-expression matrices.

Entries are keyed by a content hash of the expression values, the genes, the target and every
parameter that changes the values (see :func:`matrix_key`), and live in
``platformdirs.user_cache_dir("geneverse")`` unless ``GENEVERSE_CACHE_DIR`` points elsewhere.
Writes are atomic (temporary file, then rename). Each entry carries its own key, the shape and
dtype of its matrix, a hash of its gene list and a checksum of its values; an entry that fails
to load or to verify against what was asked for (a truncated file, a foreign file, another key's
entry copied over it) is deleted and recomputed, never served. Keys are hash-shaped names
(hexadecimal), so no key can name a file outside the cache folder. A temporary file older than an
hour, left by a killed process, is an orphan that :func:`info` counts and :func:`clear` removes.
A cache directory that cannot be written degrades to no caching, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ._files import atomic_open, orphans

__all__ = ["cache_dir", "clear", "entries", "info", "load", "matrix_key", "store"]

_ENV = "GENEVERSE_CACHE_DIR"
_SUFFIX = ".gvcache.npz"
#: Entry format; entries of another format are ignored and replaced.
_FORMAT = 2
#: What a key looks like: the hexadecimal digest :func:`matrix_key` returns.
_KEY = re.compile(r"[0-9a-f]{16,128}")


def cache_dir() -> Path:
    """The directory holding cache entries (``$GENEVERSE_CACHE_DIR`` or the user cache dir)."""
    configured = os.environ.get(_ENV)
    if configured:
        return Path(configured)
    import platformdirs

    return Path(platformdirs.user_cache_dir("geneverse")) / "coexpression"


def entries() -> list[Path]:
    """Paths of the entries currently in the cache."""
    directory = cache_dir()
    return sorted(directory.glob(f"*{_SUFFIX}")) if directory.is_dir() else []


def info() -> dict:
    """Where the cache is and what it holds.

    Returns
    -------
    Dict with ``directory``, ``entries`` (count), ``bytes`` (their size) and ``orphans`` (temporary
    files older than an hour, left by killed processes).
    """
    paths = entries()
    size = 0
    for path in paths:
        try:
            size += path.stat().st_size
        except OSError:
            pass
    return {"directory": cache_dir(), "entries": len(paths), "bytes": size, "orphans": len(_orphans())}


def _orphans() -> list[Path]:
    """Temporary files older than an hour: ours, and those of releases that named them ``tmp*.tmp``."""
    legacy = orphans(cache_dir(), match=lambda path: path.name.startswith("tmp") and path.suffix == ".tmp")
    return sorted([*orphans(cache_dir()), *legacy])


def clear() -> int:
    """Delete every cache entry and every orphaned temporary file; returns how many files were removed.

    Temporary files younger than an hour are left alone: another process may be writing them.
    """
    removed = 0
    for path in [*entries(), *_orphans()]:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def _checksum(matrix: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(matrix).tobytes(), digest_size=16).hexdigest()


def _update_streams(streams: list, chunk: sp.csr_matrix) -> None:
    streams[0].update(np.diff(chunk.indptr).astype(np.int64).tobytes())
    streams[1].update(chunk.indices.astype(np.int64).tobytes())
    streams[2].update(chunk.data.astype(np.float64).tobytes())


def _chunk_digest(chunk: sp.csr_matrix) -> bytes:
    streams = [hashlib.blake2b(digest_size=20) for _ in range(3)]
    _update_streams(streams, chunk)
    return b"".join(stream.digest() for stream in streams)


def matrix_key(chunks: Iterable[sp.csr_matrix], description: dict) -> str:
    """Content hash of a matrix streamed as CSR chunks plus a JSON-able ``description``.

    The row counts, column indices and values are hashed as three separate streams, so the key
    does not depend on how the cells were chunked, nor on whether the input was dense, CSR or
    CSC, integer or float. A dask array is hashed block by block on its scheduler instead of being
    pulled through this process, so its key also depends on its row chunks.

    Parameters
    ----------
    chunks
        The matrix as CSR float64 chunks of cells, in order.
    description
        Everything else that decides the values (target, parameters, gene names).

    Returns
    -------
    Hexadecimal key.
    """
    total = hashlib.blake2b(digest_size=20)
    if getattr(chunks, "is_dask", False):
        # hashed where the blocks live, in parallel; the blocks' digests are combined in order
        total.update(b"dask")
        for digest in chunks.map_list(_chunk_digest):
            total.update(digest)
    else:
        streams = [hashlib.blake2b(digest_size=20) for _ in range(3)]
        for chunk in chunks:
            _update_streams(streams, chunk)
        for stream in streams:
            total.update(stream.digest())
    total.update(json.dumps(description, sort_keys=True, default=str).encode())
    return total.hexdigest()


def _check_key(key: str) -> str:
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        shown = repr(key) if len(repr(key)) <= 60 else repr(key)[:57] + "..."
        raise ValueError(
            f"Invalid cache key {shown}: keys are 16-128 lowercase hexadecimal characters, as "
            "`gv.cache.matrix_key` returns; they never name a path."
        )
    return key


def _path(key: str) -> Path:
    return cache_dir() / f"{_check_key(key)}{_SUFFIX}"


def genes_digest(genes: Sequence[str]) -> str:
    """Hash of an ordered gene list, stored in an entry and checked when it is loaded."""
    return hashlib.blake2b("\n".join(map(str, genes)).encode(), digest_size=16).hexdigest()


def _read_entry(path: Path) -> dict:
    """All fields of an entry; the file is closed whatever happens (a truncated zip included)."""
    with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def load(
    key: str, shape: tuple[int, int], *, dtype: np.dtype | str | None = None, genes: Sequence[str] | None = None
) -> np.ndarray | None:
    """The cached matrix for ``key``, or ``None`` if absent; corrupt or foreign entries are removed.

    An entry is served only if it names ``key`` itself, its matrix has ``shape`` (and ``dtype``,
    and was computed for ``genes``, when given) and its values match their checksum.

    Parameters
    ----------
    key
        From :func:`matrix_key` (hexadecimal; anything else is a ValueError).
    shape
        The shape the matrix must have.
    dtype
        The dtype it must have, if given.
    genes
        The gene list it must have been stored for, if given.

    Returns
    -------
    The matrix, or ``None``.
    """
    path = _path(key)
    if not path.exists():
        return None
    try:
        fields = _read_entry(path)
        matrix = fields["matrix"]
        problems = []
        if int(fields.get("format", 0)) != _FORMAT:
            problems.append("an older entry format")
        if str(fields.get("key", "")) != key:
            problems.append("it was stored for another key")
        if matrix.shape != tuple(shape):
            problems.append(f"shape {matrix.shape} instead of {tuple(shape)}")
        if dtype is not None and matrix.dtype != np.dtype(dtype):
            problems.append(f"dtype {matrix.dtype} instead of {np.dtype(dtype)}")
        if genes is not None and str(fields.get("genes", "")) != genes_digest(genes):
            problems.append("it was stored for other genes")
        if str(fields.get("checksum", "")) != _checksum(matrix):
            problems.append("its values do not match their checksum")
        if problems:
            raise ValueError("; ".join(problems))
    except Exception as error:  # noqa: BLE001 - any unreadable or foreign entry is recomputed
        warnings.warn(f"Ignoring a corrupt geneverse cache entry {path.name} ({error}); recomputing.", stacklevel=3)
        try:
            path.unlink()
        except OSError:
            pass
        return None
    return matrix


def store(
    key: str, matrix: np.ndarray, metadata: dict | None = None, *, genes: Sequence[str] | None = None
) -> Path | None:
    """Write ``matrix`` atomically under ``key``, with the key, a checksum and (optionally) the genes' hash.

    Parameters
    ----------
    key
        From :func:`matrix_key` (hexadecimal; anything else is a ValueError).
    matrix
        The values to keep.
    metadata
        JSON-able notes stored beside the matrix.
    genes
        The genes the matrix is over; :func:`load` with ``genes=`` then checks them.

    Returns
    -------
    The entry's path, or ``None`` when the cache directory is not writable (a warning says so).
    """
    path = _path(key)
    directory = path.parent
    matrix = np.ascontiguousarray(matrix)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as file:
            np.savez(
                file,
                matrix=matrix,
                format=np.array(_FORMAT),
                key=np.array(key),
                genes=np.array("" if genes is None else genes_digest(genes)),
                checksum=np.array(_checksum(matrix)),
                metadata=np.array(json.dumps(metadata or {}, default=str)),
            )
    except (OSError, ValueError) as error:
        warnings.warn(
            f"Could not write to the geneverse cache at {directory} ({error}); continuing without caching. "
            f"Set {_ENV} to a writable directory or pass use_cache=False.",
            stacklevel=3,
        )
        return None
    return path
