"""Read a cells x genes matrix in chunks of cells, whatever its storage.

Every co-expression target is a sum over cells, so all of them read their input through
:class:`CellChunks`: in-memory dense or sparse arrays, anndata's backed datasets and dask arrays
all come out as validated CSR chunks of float64, and memory stays O(chunk) on the input side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


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

    def _read(self, start: int, stop: int) -> object:
        if is_dask_array(self.X):
            block = self.X[start:stop]
            if self.columns is not None:
                block = block[:, self.columns]
            return block.compute()
        block = self.X[start:stop]
        if self.columns is not None:
            block = block[:, self.columns]
        return block

    def _validate(self, chunk: sp.csr_matrix) -> None:
        if not np.all(np.isfinite(chunk.data)):
            raise ValueError(
                f"{self.source_name} contains NaN or infinite values; remove or impute them "
                "(e.g. `np.nan_to_num`) before computing co-expression."
            )
        if self.require_nonnegative and chunk.nnz and chunk.data.min() < 0:
            raise ValueError(
                f"{self.source_name} contains negative values, but this target needs counts or "
                "non-negative expression; pass `layer='counts'` or a log-normalised layer, not scaled data."
            )

    def __iter__(self) -> Iterator[sp.csr_matrix]:
        if self.n_chunks == 1 and self._single is not None:
            yield self._single
            return
        for start in range(0, self.n_cells, self.chunk_size):
            chunk = _to_csr64(self._read(start, min(start + self.chunk_size, self.n_cells)))
            self._validate(chunk)
            if self.n_chunks == 1:
                # In-memory inputs that fit in one chunk are converted once, not once per pass.
                self._single = chunk
            yield chunk


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


def gene_values(chunks: CellChunks) -> GeneValues:
    """One pass over the cells collecting every gene's distinct nonzero values and their counts."""
    genes = np.empty(0, dtype=np.int64)
    values = np.empty(0, dtype=np.float64)
    counts = np.empty(0, dtype=np.int64)
    for chunk in chunks:
        coo = chunk.tocoo()
        g, v, c = _distinct_pairs(coo.col.astype(np.int64), coo.data, np.ones(coo.nnz, dtype=np.int64))
        genes, values, counts = _distinct_pairs(
            np.concatenate([genes, g]), np.concatenate([values, v]), np.concatenate([counts, c])
        )
    ptr = np.zeros(chunks.n_genes + 1, dtype=np.int64)
    np.cumsum(np.bincount(genes, minlength=chunks.n_genes), out=ptr[1:])
    return GeneValues(ptr=ptr, values=values, counts=counts, n_cells=chunks.n_cells)
