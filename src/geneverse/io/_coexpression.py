"""Read co-expression results back out of an AnnData as tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._files import check_output_path, write_table
from .._utils import UNS_KEY, check_positive_int, check_unique_var_names, resolve_modality


def coexpression_frame(adata: Any, key: str = "gv_mi", *, mod: str | None = None) -> pd.DataFrame:
    """The genes x genes matrix written by :func:`geneverse.tl.coexpression` as a DataFrame.

    Only the genes it was computed on are returned (all genes, or the ``genes=`` subset).

    Parameters
    ----------
    adata
        AnnData or MuData (with ``mod``).
    key
        The ``key_added`` used by :func:`~geneverse.tl.coexpression`.
    mod
        Modality of a MuData.

    Returns
    -------
    Square DataFrame indexed and labelled by gene name.
    """
    adata = resolve_modality(adata, mod)
    check_unique_var_names(adata)
    if key not in adata.varp:
        raise KeyError(
            f"No co-expression matrix varp[{key!r}]; run `gv.tl.coexpression(adata, key_added={key!r})` first. "
            f"varp keys: {list(adata.varp.keys())}."
        )
    record = adata.uns.get(UNS_KEY, {}).get(key, {})
    genes = [str(g) for g in record.get("genes", adata.var_names)]
    positions = adata.var_names.get_indexer(genes)
    if (positions < 0).any():
        raise KeyError(f"uns[{UNS_KEY!r}][{key!r}]['genes'] names genes that are no longer in var_names.")
    matrix = adata.varp[key]
    block = matrix[positions][:, positions]
    block = block.toarray() if sp.issparse(block) else np.asarray(block)
    return pd.DataFrame(block, index=genes, columns=genes)


def top_pairs(
    adata: Any, key: str = "gv_mi", *, n: int = 20, absolute: bool = True, mod: str | None = None
) -> pd.DataFrame:
    """The ``n`` strongest gene pairs of a co-expression matrix (each unordered pair once).

    Parameters
    ----------
    adata
        AnnData or MuData (with ``mod``).
    key
        The ``key_added`` of :func:`~geneverse.tl.coexpression`.
    n
        Number of pairs.
    absolute
        Rank by absolute value (signed MI and correlations are negative for anti-correlated pairs).
    mod
        Modality of a MuData.

    Returns
    -------
    DataFrame with columns ``gene_a``, ``gene_b``, ``score``, strongest first.
    """
    n = check_positive_int("n", n)
    frame = coexpression_frame(adata, key, mod=mod)
    values = frame.to_numpy()
    rows, cols = np.triu_indices(len(frame), k=1)
    scores = values[rows, cols]
    order = np.argsort(-(np.abs(scores) if absolute else scores), kind="stable")[:n]
    genes = frame.index.to_numpy()
    return pd.DataFrame(
        {"gene_a": genes[rows[order]], "gene_b": genes[cols[order]], "score": scores[order]}
    ).reset_index(drop=True)


def write_coexpression(adata: Any, path: str | Path, key: str = "gv_mi", *, mod: str | None = None) -> Path:
    """Write a co-expression matrix as a tab-separated genes x genes table.

    Parameters
    ----------
    adata
        AnnData or MuData (with ``mod``).
    path
        Output file (``.tsv``; ``.csv`` writes comma-separated).
    key
        The ``key_added`` of :func:`~geneverse.tl.coexpression`.
    mod
        Modality of a MuData.

    Returns
    -------
    The path written (atomically: a failure leaves a previous file intact).
    """
    path = check_output_path(path, "path")
    separator = "," if path.suffix.lower() == ".csv" else "\t"
    write_table(coexpression_frame(adata, key, mod=mod), path, sep=separator, float_format="%.6g")
    return path
