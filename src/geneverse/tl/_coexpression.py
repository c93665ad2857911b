"""``gv.tl.coexpression``: a genes x genes co-expression target into ``varp``."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import cache
from .._core._chunks import CellChunks, is_backed_array, row_blocks
from .._data import write_result
from .._docs import shared_docs
from .._keys import Key
from .._utils import (
    check_positive_int,
    check_unique_var_names,
    get_expression,
    logger,
    progress_bar,
    resolve_modality,
    select_genes,
)
from ..targets._registry import Target, fingerprint, get_target
from ._batch import batch_codes


def _describe(value: Any) -> Any:
    """A JSON-able stand-in for a parameter: matrices (e.g. a cell graph) by a hash of their content."""
    if sp.issparse(value) or isinstance(value, np.ndarray):
        matrix = sp.csr_matrix(value)
        chunk = sp.csr_matrix((matrix.data.astype(np.float64), matrix.indices, matrix.indptr), shape=matrix.shape)
        return {"matrix": list(matrix.shape), "hash": cache.matrix_key([chunk], {})}
    return value


def _uns_param(value: Any) -> Any:
    """How a parameter is recorded in ``uns``: matrices and arrays by their shape."""
    if sp.issparse(value) or isinstance(value, np.ndarray):
        kind = "matrix" if value.ndim == 2 else "array"
        return f"{kind} {' x '.join(str(n) for n in value.shape)}"
    return value


def _cache_description(target: Target, params: dict, gene_names: list[str]) -> dict | None:
    """What besides the matrix decides the values; ``None`` when the result cannot be cached safely."""
    if target.builtin:
        value_params = {k: _describe(params[k]) for k in target.value_params}
        code = "builtin"
    else:
        # the function and its keyword arguments, hashed by content (str() of an array elides values)
        code, value_params = target.source_hash(), fingerprint(params)
        if code is None or value_params is None:
            logger.info(
                "custom target %r reads a value geneverse cannot hash by content; computing it without the cache",
                target.name,
            )
            return None
    return {"target": target.name, "code": code, "params": value_params, "genes": gene_names, "format": 2}


def _as_varp(values: np.ndarray, positions: np.ndarray | None, n_vars: int) -> np.ndarray | sp.csr_matrix:
    """Dense float32 for all genes; CSR (n_vars x n_vars) with zeros outside the block for a subset."""
    values = values.astype(np.float32, copy=False)
    if positions is None:
        return values
    rows = np.repeat(positions, len(positions))
    cols = np.tile(positions, len(positions))
    return sp.csr_matrix((values.ravel(), (rows, cols)), shape=(n_vars, n_vars))


@shared_docs
def coexpression(
    adata: Any,
    target: str | Callable = Key.TARGET,
    *,
    layer: str | None = None,
    genes: str | Sequence[str] | np.ndarray | None = None,
    key_added: str | None = None,
    target_kwargs: dict | None = None,
    signed_mi: bool = True,
    mi_backend: str = "auto",
    batch_key: str | None = None,
    use_cache: bool = True,
    chunk_size: int = 20_000,
    progress: bool = True,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Compute a genes x genes co-expression target over cells.

    The matrix is accumulated over chunks of cells, so ``X`` may be dense, scipy sparse
    (CSR/CSC), integer or float, a backed dataset (``read_h5ad(backed="r")``) or a dask array,
    with the same result.

    Parameters
    ----------
    adata
        AnnData (cells x genes), or a MuData with ``mod``.
    target
        A registered target name (:func:`geneverse.targets.available_targets`) or a callable
        ``f(X, gene_names, **target_kwargs)``. Built-in:

        ``"mi"`` (default)
            Mutual information (bits) on discretised expression over all cells (the plug-in
            estimator): bin 0 = not expressed, bins 1..k = quantiles of the gene's nonzero values
            (k = min(``n_bins``, distinct nonzero values)); times the sign of the Pearson
            correlation when ``signed_mi``. The diagonal is the entropy of g's bins. Needs
            non-negative values (counts or normalised expression). Chosen as the default from the
            quality matrix (``docs/quality.md``): programs are recovered far better than with
            GeneVector's estimator (median ARI 0.97 vs 0.82 at the base setting, 0.89 vs 0.18
            at 16 programs). On few dense samples (fewer than 200, at least half of the values
            nonzero: bulk RNA-seq, for one) binned MI is noisy, and the MI targets warn and
            advise ``"pearson"`` on log-normalised values.
        ``"genevector_mi"``
            GeneVector 1.0.0's estimator, exactly (pair for pair): as ``"mi"``, but the cells where
            both genes are zero are left out of the joint table, and the diagonal is the entropy of
            g's nonzero bins. Same as ``"mi"`` with ``include_double_zeros=False``.
        ``"pearson"``, ``"spearman"``
            Correlation over all cells (Spearman: average ranks for ties, zeros included).
            A gene with zero variance gets 0 in its row and column (diagonal included), and a warning.
        ``"jaccard"``
            Jaccard index of detection (x > 0); diagonal 1, 0 for a gene detected nowhere.
        ``"cosine"``
            Cosine similarity of the genes' vectors over cells; 0 for an all-zero gene.
        ``"cooccurrence"``, ``"ppmi"``
            exp2vec's term co-occurrence ``X.T @ X`` with the diagonal ``(diag - colsums) / 2``,
            and its positive pointwise mutual information (inputs for GloVe).
        ``"graph_xcorr"``
            Pearson correlation over cells between gene i in a cell and gene j aggregated over the
            cell's neighbours in a cells x cells graph (``target_kwargs``: ``graph`` = an ``obsp``
            key, default ``"spatial_connectivities"``, or a matrix; ``aggr`` = ``"mean"`` (rows
            normalised) or ``"sum"``; ``include_self`` (False) adds the cell to its own
            neighbourhood; ``symmetrize`` (True) stores ``(S + S.T) / 2``, False keeps ``S[i, j]`` =
            "i in the cell, j around it"). Self-loops are ignored, cells without neighbours are
            left out (with a warning); the graph must be cells x cells with finite, non-negative weights.
    {doc_layer}
    genes
        Restrict to these genes: a list of names, a boolean mask, or a boolean ``var`` column
        name (e.g. ``"highly_variable"``). See Returns for how a subset is stored.
    key_added
        ``varp`` and ``uns['gv']`` key; default ``"gv_{target}"``.
    target_kwargs
        Extra parameters of the target. For ``"mi"`` and ``"genevector_mi"``: ``n_bins`` (10),
        ``include_double_zeros`` (True for ``"mi"``, False for ``"genevector_mi"``), ``device`` (``"auto"``),
        ``block_size`` (genes per block row), ``n_jobs`` (threads, default all cores).
    signed_mi
        The MI targets only: multiply by the sign of the Pearson correlation (GeneVector's default).
    mi_backend
        The MI targets only: ``"sparse"`` (scipy sparse products over bin indicators, CPU threads),
        ``"torch"`` (dense indicator GEMMs, CUDA when available), or ``"auto"`` (torch on a
        GPU, else sparse). All give the same matrix.
    batch_key
        An ``obs`` column of batches (samples, donors, runs): compute the target within each batch
        and average the matrices, weighted by the batches' cells. Genes that differ between batches
        only by a batch's capture or depth then do not look co-expressed, so gene and cell vectors
        carry less of the batch. On planted batches (``benchmarks/batch.py``) it raised the mixing of
        the uncorrected cell vectors from 0.23 to 0.73 (base setting) and, after
        :func:`batch_correct`, the mixing with strong capture effects from 0.31 to 0.56. Not with
        graph targets (``graph_xcorr``), whose neighbourhoods cross batches. Each batch needs at
        least 2 cells.
    use_cache
        Reuse and store results in the on-disk cache (:mod:`geneverse.cache`). A custom target's
        key covers its source code, default arguments, the values its closure captured and the
        module globals (and helper functions) it reads; a target that reads anything else (an
        object with no content hash, such as an open file or a model) is computed afresh every time.
    {doc_chunk_size}
    progress
        Show a progress bar.
    {doc_mod}
    {doc_copy}

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes into the (modality) AnnData:

    ``varp[key_added]``
        float32 genes x genes matrix. With all genes, a dense array. With a ``genes`` subset,
        a scipy CSR matrix (n_vars x n_vars, as ``varp`` requires) holding the block of the chosen
        genes and zeros elsewhere; :func:`geneverse.io.coexpression_frame` returns just the block.
    ``uns['gv'][key_added]``
        ``kind``, ``target``, ``params``, ``layer``, ``genes`` (the genes used, in order),
        ``n_cells``, ``cache_key``, ``from_cache``, ``seconds`` and ``version``.

    Raises
    ------
    ValueError
        NaN or infinite values; negative values for a target that needs non-negative input;
        an empty matrix; duplicate gene names; bad parameters. ``adata`` is left unchanged.
    KeyError
        Unknown target, layer, gene or ``var`` column.

    Examples
    --------
    >>> import geneverse as gv
    >>> adata = gv.datasets.pbmc68k()
    >>> gv.tl.coexpression(adata, layer="counts", progress=False)
    >>> adata.varp["gv_mi"].shape
    (765, 765)
    """
    started = time.perf_counter()
    modality = resolve_modality(adata, mod)
    spec = get_target(target)
    params = spec.params(target_kwargs, signed_mi=signed_mi, mi_backend=mi_backend)
    key = f"gv_{spec.name}" if key_added is None else key_added
    if not isinstance(key, str) or not key:
        raise ValueError("key_added must be a non-empty string.")
    check_unique_var_names(modality)
    matrix, source_name = get_expression(modality, layer)
    positions = select_genes(modality, genes)
    if modality.n_obs == 0 or modality.n_vars == 0:
        raise ValueError(f"{source_name} is empty ({modality.n_obs} cells x {modality.n_vars} genes).")
    check_positive_int("chunk_size", chunk_size)
    gene_names = [str(g) for g in (modality.var_names if positions is None else modality.var_names[positions])]
    if batch_key is None:
        parts = [(matrix, "")]
    else:
        if spec.resolve is not None:
            raise ValueError(
                f"batch_key does not work with the graph target {spec.name!r}: its neighbourhoods cross batches. "
                "Build the graph per batch yourself, or leave batch_key out."
            )
        codes, names = batch_codes(modality, batch_key)
        parts = [(matrix[np.flatnonzero(codes == b)], f" in batch {name!r}") for b, name in enumerate(names)]
    compute_params = spec.resolve(modality, params) if spec.resolve else params
    description = _cache_description(spec, compute_params, gene_names) if use_cache else None
    results, keys, cached, sizes = [], [], [], []
    for part, where in parts:  # one batch (or all cells) at a time; the average is weighted by cells
        chunks = CellChunks(
            part,
            chunk_size=int(chunk_size),
            columns=positions,
            require_nonnegative=spec.nonnegative,
            source_name=f"{source_name}{where}",
        )
        if spec.check_input is not None:
            spec.check_input(chunks)
        cache_key = cache.matrix_key(chunks, description) if description is not None else None
        part_values = cache.load(cache_key, (len(gene_names),) * 2, genes=gene_names) if cache_key else None
        cached.append(part_values is not None)
        if part_values is None:
            logger.info(
                "computing %r co-expression for %d genes over %d cells%s",
                spec.name, len(gene_names), chunks.n_cells, where,
            )  # fmt: skip
            bar = progress_bar(progress, f"coexpression {spec.name}{where}")
            part_values = spec.compute(chunks, gene_names, compute_params, bar)
            if cache_key:
                cache.store(cache_key, part_values, {"target": spec.name, "n_genes": len(gene_names)}, genes=gene_names)
        results.append(part_values)
        keys.append(cache_key or "")
        sizes.append(chunks.n_cells)
    if len(results) == 1:
        values = results[0]
    else:
        values = _weighted_mean(results, sizes)
    _check_storable(spec.name, values)
    if spec.check is not None:
        spec.check(values, gene_names)

    record = {
        "kind": "coexpression",
        "target": spec.name,
        "params": {k: _uns_param(v) for k, v in params.items()},
        "layer": layer,
        "genes": np.asarray(gene_names, dtype=object),
        "n_cells": int(sum(sizes)),
        "backed": bool(is_backed_array(matrix)),
        "batch_key": batch_key,
        "cache_key": ",".join(keys),
        "from_cache": all(cached),
    }
    if batch_key is not None:
        record["batches"] = np.asarray(names, dtype=object)
        record["batch_cells"] = np.asarray(sizes)
    varp = {key: _as_varp(values, positions, modality.n_vars)}
    return write_result(adata, key, record, mod=mod, copy=copy, started=started, varp=varp)


def _weighted_mean(matrices: list[np.ndarray], weights: list[int]) -> np.ndarray:
    """The weighted mean of genes x genes matrices, summed in float64 a block of rows at a time."""
    out = np.empty(matrices[0].shape, dtype=np.float32)
    for rows in row_blocks(len(out)):
        total = sum(np.asarray(m[rows], dtype=np.float64) * w for m, w in zip(matrices, weights, strict=True))
        out[rows] = total / sum(weights)
    return out


def _check_storable(target: str, values: np.ndarray) -> None:
    """Varp holds float32: refuse results that would overflow to inf rather than store them."""
    limit = np.finfo(np.float32).max
    blocks = [values[rows] for rows in row_blocks(len(values))]  # views: no genes x genes temporary
    if not all(np.isfinite(b).all() and np.abs(b).max(initial=0) <= limit for b in blocks):
        raise ValueError(
            f"The {target!r} matrix has values beyond float32's range (|x| > {limit:.3g}), from very large "
            "expression values; normalise or scale the data (e.g. `sc.pp.normalize_total`) first."
        )
