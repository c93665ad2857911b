"""Co-expression results out of an AnnData as tables, and a smaller matrix for storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._core._sparsify import to_float16, top_k_partners
from .._data import TOP_K_STORAGE, coexpression_storage, coexpression_varp, find_record, write_result
from .._data import coexpression as get_coexpression
from .._docs import shared_docs
from .._files import check_output_path, write_table
from .._keys import Key
from .._utils import check_positive_int, renamed_parameters, resolve_modality


@renamed_parameters(key="coexpression_key")
@shared_docs
def coexpression_frame(adata: Any, coexpression_key: str = Key.COEXPRESSION, *, mod: str | None = None) -> pd.DataFrame:
    """Same as :func:`geneverse.get.coexpression`, kept for existing code: the matrix as a DataFrame.

    Parameters
    ----------
    {doc_adata}
    coexpression_key
        Passed as ``key``.
    {doc_mod}

    Returns
    -------
    What :func:`geneverse.get.coexpression` returns.
    """
    return get_coexpression(adata, coexpression_key, mod=mod)


@renamed_parameters(key="coexpression_key")
@shared_docs
def top_pairs(
    adata: Any, coexpression_key: str = Key.COEXPRESSION, *, n: int = 20, absolute: bool = True, mod: str | None = None
) -> pd.DataFrame:
    """The ``n`` strongest gene pairs of a co-expression matrix (each unordered pair once).

    Parameters
    ----------
    {doc_adata}
    coexpression_key
        The ``key_added`` of :func:`~geneverse.tl.coexpression`.
    n
        Number of pairs.
    absolute
        Rank by absolute value (signed MI and correlations are negative for anti-correlated pairs).
    {doc_mod}

    Returns
    -------
    DataFrame with columns ``gene_a``, ``gene_b``, ``score``, strongest first.
    """
    n = check_positive_int("n", n)
    frame = coexpression_frame(adata, coexpression_key, mod=mod)
    values = frame.to_numpy()
    rows, cols = np.triu_indices(len(frame), k=1)
    scores = values[rows, cols]
    order = np.argsort(-(np.abs(scores) if absolute else scores), kind="stable")[:n]
    genes = frame.index.to_numpy()
    return pd.DataFrame(
        {"gene_a": genes[rows[order]], "gene_b": genes[cols[order]], "score": scores[order]}
    ).reset_index(drop=True)


@renamed_parameters(key="coexpression_key")
@shared_docs
def write_coexpression(
    adata: Any, path: str | Path, coexpression_key: str = Key.COEXPRESSION, *, mod: str | None = None
) -> Path:
    """Write a co-expression matrix as a tab-separated genes x genes table.

    Parameters
    ----------
    {doc_adata}
    path
        Output file (``.tsv``; ``.csv`` writes comma-separated).
    coexpression_key
        The ``key_added`` of :func:`~geneverse.tl.coexpression`.
    {doc_mod}

    Returns
    -------
    The path written (atomically: a failure leaves a previous file intact).
    """
    path = check_output_path(path, "path")
    separator = "," if path.suffix.lower() == ".csv" else "\t"
    write_table(coexpression_frame(adata, coexpression_key, mod=mod), path, sep=separator, float_format="%.6g")
    return path


@shared_docs
def compact_coexpression(
    adata: Any,
    coexpression_key: str = Key.COEXPRESSION,
    *,
    top_k: int | None = None,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Shrink a co-expression matrix before writing the file: float16, or each gene's strongest partners.

    A dense float32 matrix costs 4 bytes per gene pair in ``write_h5ad`` (20,000 genes: 1.6 GB).
    Without ``top_k`` it is stored as float16 (half the size; about 3 significant digits, values up
    to 65,504). With ``top_k`` only each gene's ``top_k`` strongest partners (by absolute value)
    are kept, symmetrised, in a sparse float32 matrix (20,000 genes, ``top_k=50``: about 20 MB);
    the pairs left out read as 0. :func:`~geneverse.io.top_pairs`, :func:`~geneverse.pl.coexpression`,
    :func:`~geneverse.get.coexpression` and gene networks read either; :func:`~geneverse.tl.embed`
    trains on a float16 matrix but refuses a top-k one (its zeros are not co-expression): recompute
    the full matrix with :func:`~geneverse.tl.coexpression`, which the cache returns in seconds.

    Parameters
    ----------
    {doc_adata}
    coexpression_key
        The ``key_added`` of :func:`~geneverse.tl.coexpression`; replaced in ``varp``.
    top_k
        Keep each gene's ``top_k`` strongest partners (sparse) instead of every pair in float16.
    {doc_mod}
    {doc_copy}

    Returns
    -------
    ``None``, or the modified copy. Replaces ``varp[coexpression_key]`` and adds ``storage``
    (``"float16"`` or ``"top_k"``, with ``top_k``) to its record in ``uns['gv']``. A matrix with NaN
    or infinite values raises.
    """
    if top_k is not None:
        top_k = check_positive_int("top_k", top_k)
    modality = resolve_modality(adata, mod)
    matrix = coexpression_varp(modality, coexpression_key)  # compacted as stored (var order), whatever the record says
    if coexpression_storage(modality, coexpression_key) == TOP_K_STORAGE:
        raise ValueError(f"varp[{coexpression_key!r}] already keeps only each gene's strongest partners.")
    if top_k is None and sp.issparse(matrix):
        raise ValueError(f"varp[{coexpression_key!r}] is sparse already; float16 storage is for a dense matrix.")
    old = dict(find_record(modality, coexpression_key) or {"kind": "coexpression"})  # or a matrix put in by hand
    compact = to_float16(matrix) if top_k is None else top_k_partners(matrix, top_k)
    stored = {**old, "storage": "float16"} if top_k is None else {**old, "storage": TOP_K_STORAGE, "top_k": top_k}
    return write_result(adata, coexpression_key, stored, mod=mod, copy=copy, varp={coexpression_key: compact})
