"""Read co-expression results back out of an AnnData as tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._data import coexpression as get_coexpression
from .._docs import shared_docs
from .._files import check_output_path, write_table
from .._keys import Key
from .._utils import check_positive_int, renamed_parameters


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
