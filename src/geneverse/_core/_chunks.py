"""Read a cells x genes matrix in chunks of cells, whatever its storage.

Every co-expression target is a sum over cells, so all of them read their input through
:class:`CellChunks`: in-memory dense or sparse arrays, anndata's backed datasets and dask arrays
all come out as validated CSR chunks of float64, and memory stays O(chunk) on the input side.

Computations are written as a function of one chunk plus a way to combine two results
(:meth:`CellChunks.map_reduce`, :meth:`CellChunks.map_concat`). In memory and backed, chunks are
read and combined one after the other; for a dask array the same functions become one dask
graph (a task per block, a tree of combines) computed once on the active scheduler, so a
``dask.distributed`` cluster the user started runs it on its workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp

#: Rows per block where a genes x genes matrix is read, so that no genes x genes temporary is made.
BLOCK_ROWS = 1024


def row_blocks(n: int, rows: int = BLOCK_ROWS) -> Iterator[slice]:
    """Slices of ``rows`` rows covering ``range(n)``."""
    return (slice(start, min(start + rows, n)) for start in range(0, n, rows))


def rows_per_block(n_columns: int, largest: int | None = 2048, values: int = 2**23) -> int:
    """Rows of a block against ``n_columns`` columns: about ``values`` values (2**23: 32 MB of float32).

    At least 1 row, at most ``largest`` (``None``: no cap).
    """
    rows = max(values // max(n_columns, 1), 1)
    return rows if largest is None else min(rows, largest)


def row_totals(chunk: sp.csr_matrix) -> np.ndarray:
    """Each row's sum (a cell's total count)."""
    return np.asarray(chunk.sum(axis=1)).ravel()


def scale_rows(chunk: sp.csr_matrix, factors: np.ndarray) -> sp.csr_matrix:
    """A copy of ``chunk`` with row ``i`` multiplied by ``factors[i]``."""
    out = chunk.copy()
    out.data = out.data * np.repeat(factors, np.diff(out.indptr))
    return out


def is_dask_array(X: object) -> bool:
    """Whether ``X`` is a dask array (checked without importing dask)."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "compute")


def is_backed_array(X: object) -> bool:
    """Whether ``X`` is an h5py dataset or anndata's backed sparse dataset."""
    module = type(X).__module__
    return module.startswith("h5py") or (module.startswith("anndata") and hasattr(X, "to_memory"))


def _to_csr64(block: object) -> sp.csr_matrix:
    """Turn one chunk of any supported kind into CSR float64 without explicit zeros."""
    if sp.issparse(block):
        csr = sp.csr_matrix(block, dtype=np.float64)
    else:
        dense = np.asarray(block)
        if dense.ndim != 2:
            raise ValueError(f"Expression matrix must be 2-D, got an array with shape {dense.shape}.")
        if not (np.issubdtype(dense.dtype, np.number) or dense.dtype == bool):
            raise TypeError(f"Expression matrix must be numeric, got dtype {dense.dtype}.")
        csr = sp.csr_matrix(dense.astype(np.float64, copy=False))
    csr.sum_duplicates()
    csr.eliminate_zeros()
    return csr


@dataclass
class CellChunks:
    """Iterate over a cells x genes matrix as CSR float64 chunks of at most ``chunk_size`` cells.

    Parameters
    ----------
    X
        Dense ndarray, scipy sparse matrix or array, backed dataset or dask array.
    chunk_size
        Cells per chunk.
    columns
        Integer indices of the genes to keep (``None``: all).
    require_nonnegative
        Raise on negative values (targets defined on counts).
    source_name
        How the matrix is named in error messages (e.g. ``"layers['counts']"``).
    """

    X: object
    chunk_size: int = 20_000
    columns: np.ndarray | None = None
    require_nonnegative: bool = False
    source_name: str = "X"

    def __post_init__(self) -> None:
        if len(getattr(self.X, "shape", ())) != 2:
            raise ValueError(f"{self.source_name} must be a 2-D cells x genes matrix.")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive number of cells, got {self.chunk_size}.")
        if sp.issparse(self.X) and not isinstance(self.X, sp.csr_matrix | sp.csr_array):
            # Row slices of CSC/COO are slow; one conversion makes every chunk cheap.
            self.X = sp.csr_matrix(self.X)
        self._single: sp.csr_matrix | None = None

    @property
    def n_cells(self) -> int:
        """Number of cells (rows)."""
        return int(self.X.shape[0])

    @property
    def n_genes(self) -> int:
        """Number of genes kept (columns)."""
        return int(self.X.shape[1] if self.columns is None else len(self.columns))

    @property
    def n_chunks(self) -> int:
        """How many chunks one pass yields."""
        return max(1, -(-self.n_cells // self.chunk_size))

    @property
    def is_dask(self) -> bool:
        """Whether the matrix is a dask array (computations then run as dask graphs)."""
        return is_dask_array(self.X)

    def _read(self, start: int, stop: int) -> object:
        block = self.X[start:stop]
        if self.columns is not None:
            block = block[:, self.columns]
        return block.compute() if self.is_dask else block

    def __iter__(self) -> Iterator[sp.csr_matrix]:
        if self.n_chunks == 1 and self._single is not None:
            yield self._single
            return
        for start in range(0, self.n_cells, self.chunk_size):
            chunk = checked_chunk(
                self._read(start, min(start + self.chunk_size, self.n_cells)),
                self.require_nonnegative,
                self.source_name,
            )
            if self.n_chunks == 1:
                # In-memory inputs that fit in one chunk are converted once, not once per pass.
                self._single = chunk
            yield chunk

    def _dask_parts(self, fn: Callable[[sp.csr_matrix], Any]) -> list:
        """One delayed ``fn(checked block)`` per row block of the dask array, in row order.

        The array's own row chunks are the chunks (``chunk_size`` does not apply); column chunks
        are merged so that each task sees whole cells.
        """
        import dask

        X = self.X if self.columns is None else self.X[:, self.columns]
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        check = partial(checked_chunk, require_nonnegative=self.require_nonnegative, source_name=self.source_name)
        return [dask.delayed(fn)(dask.delayed(check)(block)) for block in X.to_delayed().ravel()]

    def map_reduce(
        self,
        fn: Callable[[sp.csr_matrix], Any],
        combine: Callable[[Any, Any], Any] | None = None,
        progress: Callable | None = None,
    ) -> Any:
        """``combine`` the results of ``fn`` over all chunks (default: :func:`add_parts`).

        ``combine`` must be associative: dask inputs combine in a tree, not left to right.
        """
        combine = combine or add_parts
        result = None
        if self.is_dask:
            import dask

            parts = self._dask_parts(fn)
            # groups as wide as the scheduler's parallelism: each is a tree of combines computed at
            # once, then folded into the result, so memory stays O(group), not O(number of blocks)
            width = _dask_parallelism()
            for start in range(0, len(parts), width):
                group = parts[start : start + width]
                while len(group) > 1:
                    pairs = range(0, len(group) - 1, 2)
                    group = [dask.delayed(combine)(group[i], group[i + 1]) for i in pairs] + group[len(pairs) * 2 :]
                value = group[0].compute()
                result = value if result is None else combine(result, value)
            return result
        for chunk in progress(self, total=self.n_chunks) if progress else self:
            part = fn(chunk)
            result = part if result is None else combine(result, part)
        return result

    def map_list(self, fn: Callable[[sp.csr_matrix], Any], progress: Callable | None = None) -> list:
        """``fn`` of every chunk, in row order (dask: computed in parallel as one graph)."""
        if self.is_dask:
            import dask

            return list(dask.compute(*self._dask_parts(fn)))
        return [fn(chunk) for chunk in (progress(self, total=self.n_chunks) if progress else self)]

    def map_concat(self, fn: Callable[[sp.csr_matrix], np.ndarray], progress: Callable | None = None) -> np.ndarray:
        """Row-wise results of ``fn`` (cells x k per chunk) stacked over all chunks."""
        return np.vstack([np.asarray(part) for part in self.map_list(fn, progress)])


def _dask_parallelism() -> int:
    """Blocks computed at once: twice the threads of the distributed cluster in use, or of this machine."""
    try:
        from distributed import get_client

        workers = get_client().scheduler_info()["workers"].values()
        threads = sum(int(w.get("nthreads", 1)) for w in workers)
    except (ImportError, ValueError):  # no distributed, or no client: dask's local threads
        threads = os.cpu_count() or 1
    return max(2, 2 * threads)


def add_parts(a: Any, b: Any) -> Any:
    """Add two chunk results: arrays (dense or sparse), or tuples of them element by element."""
    if isinstance(a, tuple):
        return tuple(add_parts(x, y) for x, y in zip(a, b, strict=True))
    return a + b


def checked_chunk(block: object, require_nonnegative: bool, source_name: str) -> sp.csr_matrix:
    """A chunk as CSR float64, with a ValueError naming the fix for NaN/inf or forbidden negatives."""
    chunk = _to_csr64(block)
    if not np.all(np.isfinite(chunk.data)):
        raise ValueError(
            f"{source_name} contains NaN or infinite values; remove or impute them "
            "(e.g. `np.nan_to_num`) before computing co-expression."
        )
    if require_nonnegative and chunk.nnz and chunk.data.min() < 0:
        raise ValueError(
            f"{source_name} contains negative values, but this target needs counts or "
            "non-negative expression; pass `layer='counts'` or a log-normalised layer, not scaled data."
        )
    return chunk


@dataclass
class GeneValues:
    """Distinct nonzero values of every gene with their counts, sorted by (gene, value).

    ``values[ptr[g]:ptr[g + 1]]`` are gene ``g``'s distinct nonzero values (ascending) and
    ``counts`` how many cells hold each one. Memory is the number of distinct (gene, value)
    pairs: small for counts, up to the number of nonzeros for continuous data.
    """

    ptr: np.ndarray
    values: np.ndarray
    counts: np.ndarray
    n_cells: int

    @property
    def n_genes(self) -> int:
        """Number of genes."""
        return len(self.ptr) - 1

    @property
    def gene_of_value(self) -> np.ndarray:
        """Gene index of each entry of ``values``."""
        return np.repeat(np.arange(self.n_genes), np.diff(self.ptr))

    @property
    def nnz(self) -> np.ndarray:
        """Number of cells where each gene is nonzero."""
        return np.bincount(self.gene_of_value, weights=self.counts, minlength=self.n_genes).astype(np.int64)

    def lookup(self, genes: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Index into ``values``/``counts`` of each (gene, value) pair, which must be present."""
        distinct = np.unique(self.values)
        n_distinct = max(len(distinct), 1)
        table_keys = self.gene_of_value.astype(np.int64) * n_distinct + np.searchsorted(distinct, self.values)
        query_keys = genes.astype(np.int64) * n_distinct + np.searchsorted(distinct, values)
        return np.searchsorted(table_keys, query_keys)


def _distinct_pairs(genes: np.ndarray, values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """Collapse (gene, value, weight) triples to distinct (gene, value) with summed weights."""
    order = np.lexsort((values, genes))
    genes, values, weights = genes[order], values[order], weights[order]
    new = np.ones(len(genes), dtype=bool)
    new[1:] = (genes[1:] != genes[:-1]) | (values[1:] != values[:-1])
    starts = np.flatnonzero(new)
    summed = np.add.reduceat(weights, starts) if len(starts) else weights[:0]
    return genes[starts], values[starts], summed


def _chunk_value_counts(chunk: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    coo = chunk.tocoo()
    return _distinct_pairs(coo.col.astype(np.int64), coo.data, np.ones(coo.nnz, dtype=np.int64))


def _merge_value_counts(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    return _distinct_pairs(*(np.concatenate([x, y]) for x, y in zip(a, b, strict=True)))


def gene_values(chunks: CellChunks) -> GeneValues:
    """One pass over the cells collecting every gene's distinct nonzero values and their counts."""
    genes, values, counts = chunks.map_reduce(_chunk_value_counts, _merge_value_counts)
    ptr = np.zeros(chunks.n_genes + 1, dtype=np.int64)
    np.cumsum(np.bincount(genes, minlength=chunks.n_genes), out=ptr[1:])
    return GeneValues(ptr=ptr, values=values, counts=counts, n_cells=chunks.n_cells)
