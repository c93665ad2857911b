"""On-disk cache of co-expression matrices.

Entries are keyed by a content hash of the expression values, the genes, the target and every
parameter that changes the values (see :func:`matrix_key`), and live in
``platformdirs.user_cache_dir("geneverse")`` unless ``GENEVERSE_CACHE_DIR`` points elsewhere.
Writes are atomic (temporary file, then rename), each entry carries a checksum of its matrix,
and an entry that fails to load or to verify is deleted and recomputed, never trusted. A cache
directory that cannot be written degrades to no caching, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["cache_dir", "clear", "entries", "load", "matrix_key", "store"]

_ENV = "GENEVERSE_CACHE_DIR"
_SUFFIX = ".gvcache.npz"


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


def clear() -> int:
    """Delete every cache entry; returns how many were removed."""
    removed = 0
    for path in entries():
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


def _path(key: str) -> Path:
    return cache_dir() / f"{key}{_SUFFIX}"


def load(key: str, shape: tuple[int, int]) -> np.ndarray | None:
    """The cached matrix for ``key``, or ``None`` if absent; corrupt entries are removed.

    Parameters
    ----------
    key
        From :func:`matrix_key`.
    shape
        The shape the matrix must have; anything else counts as corrupt.

    Returns
    -------
    The matrix, or ``None``.
    """
    path = _path(key)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            matrix = archive["matrix"]
            checksum = str(archive["checksum"])
        if matrix.shape != tuple(shape) or checksum != _checksum(matrix):
            raise ValueError("shape or checksum mismatch")
    except Exception as error:  # noqa: BLE001 - any unreadable entry is recomputed
        warnings.warn(f"Ignoring a corrupt geneverse cache entry {path.name} ({error}); recomputing.", stacklevel=3)
        try:
            path.unlink()
        except OSError:
            pass
        return None
    return matrix


def store(key: str, matrix: np.ndarray, metadata: dict | None = None) -> Path | None:
    """Write ``matrix`` atomically under ``key``.

    Parameters
    ----------
    key
        From :func:`matrix_key`.
    matrix
        The values to keep.
    metadata
        JSON-able notes stored beside the matrix.

    Returns
    -------
    The entry's path, or ``None`` when the cache directory is not writable (a warning says so).
    """
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(
                    file,
                    matrix=matrix,
                    checksum=np.array(_checksum(matrix)),
                    metadata=np.array(json.dumps(metadata or {}, default=str)),
                )
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, _path(key))
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError as error:
        warnings.warn(
            f"Could not write to the geneverse cache at {directory} ({error}); continuing without caching. "
            f"Set {_ENV} to a writable directory or pass use_cache=False.",
            stacklevel=3,
        )
        return None
    return _path(key)
