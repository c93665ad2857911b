"""Smaller co-expression matrices for storage: each gene's strongest partners, or float16."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._chunks import row_blocks, rows_per_block

#: The largest magnitude float16 holds.
FLOAT16_MAX = float(np.finfo(np.float16).max)


def _rows(matrix, block: slice) -> np.ndarray:
    """Rows of a dense or sparse matrix as a dense array; a value that is not finite raises."""
    values = matrix[block]
    values = values.toarray() if sp.issparse(values) else np.asarray(values)
    if not np.isfinite(values).all():
        raise ValueError("The matrix contains NaN or infinite values; recompute it with gv.tl.coexpression.")
    return values


def top_k_partners(matrix, k: int) -> sp.csr_matrix:
    """Each gene's ``k`` strongest partners (by absolute value, off the diagonal), symmetrised, as float32 CSR.

    A pair is kept when it is among the ``k`` strongest of either gene, with its value from the
    matrix (so the result stays symmetric for a symmetric matrix); the diagonal is kept as it is and
    zeros are not stored. ``matrix`` is dense or sparse, read by row blocks: memory is O(block x genes)
    besides the result.
    """
    n = matrix.shape[0]
    k = min(k, n - 1)
    rows, cols = [], []
    for block in row_blocks(n, rows_per_block(n, largest=None, values=2**22)):
        strength = np.abs(_rows(matrix, block).astype(np.float32))
        own = np.arange(block.start, block.stop)
        strength[np.arange(len(own)), own] = -1.0  # the diagonal is never a partner
        if k > 0:
            best = np.argpartition(strength, n - k, axis=1)[:, n - k :]
            rows.append(np.repeat(own, k))
            cols.append(best.ravel())
    rows.append(np.arange(n))  # the diagonal
    cols.append(np.arange(n))
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    pairs = np.unique(np.concatenate([rows * n + cols, cols * n + rows]))
    first, second = np.divmod(pairs, n)
    values = np.empty(len(pairs), dtype=np.float32)
    for block in row_blocks(len(pairs), 2**20):  # gather without a dense copy of the matrix
        values[block] = np.asarray(matrix[first[block], second[block]], dtype=np.float32).ravel()
    result = sp.csr_matrix((values, (first, second)), shape=(n, n))
    result.eliminate_zeros()
    result.sort_indices()
    return result


def to_float16(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` as float16, filled by row blocks; raises if a value does not fit."""
    n = matrix.shape[0]
    out = np.empty(matrix.shape, dtype=np.float16)
    for block in row_blocks(n, rows_per_block(n, largest=None, values=2**22)):
        values = _rows(matrix, block)
        largest = float(np.abs(values).max(initial=0.0))
        if largest > FLOAT16_MAX:
            raise ValueError(
                f"The matrix holds values up to {largest:.3g}, beyond float16's {FLOAT16_MAX:.0f}: "
                "keep it in float32, or store the strongest partners with top_k=."
            )
        out[block] = values
    return out
