"""``gv.tl.embed``: gene vectors from a co-expression target, trained in torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core._chunks import row_blocks
from .._data import TOP_K_STORAGE, coexpression_matrix, coexpression_storage, write_result
from .._docs import shared_docs
from .._keys import Key
from .._utils import (
    check_finite_number,
    check_positive_int,
    check_seed,
    check_unique_var_names,
    progress_bar,
    renamed_parameters,
    resolve_device,
    resolve_modality,
)

METHODS = ("genevector", "glove")
VECTORS = ("average", "sum", "gene", "context")
_DEFAULT_EPOCHS = {"genevector": 1000, "glove": 50}
_DEFAULT_TOL = {"genevector": 1e-5, "glove": None}
#: genevector trains in float32 on ``scale^2 * target``: its squared Frobenius norm (the loss's sum at
#: the start) must stay below float32's maximum with a margin of 100 for the loss to grow while training.
_MAX_SCALED_SQUARED_NORM = float(np.finfo(np.float32).max) * 1e-2
#: Below this, ``scale^2 * max|target|`` approaches float32's smallest normal numbers.
_MIN_SCALED_MAX = 1e-30


@dataclass
class _Summary:
    """What the checks need from the target, from one pass over it by row blocks."""

    finite: bool = True
    largest: float = 0.0  # max |t|
    smallest: float = 0.0  # min(t, 0)
    squared_norm: float = 0.0  # sum t^2 in float64


def _summarise(target: np.ndarray) -> _Summary:
    """One pass a block of rows at a time (no genes x genes temporary); stops at the first non-finite block."""
    summary = _Summary()
    for rows in row_blocks(len(target)):
        block = target[rows]
        if not np.isfinite(block).all():
            return _Summary(finite=False)
        summary.largest = max(summary.largest, float(np.abs(block).max(initial=0.0)))
        summary.smallest = min(summary.smallest, float(block.min(initial=0.0)))
        summary.squared_norm += float(np.square(block, dtype=np.float64).sum())
    return summary


def _check_scale(scale: float, summary: _Summary) -> None:
    """``scale^2 * target`` must be representable in float32 with room to train (genevector)."""
    if summary.largest == 0:
        return
    with np.errstate(over="ignore", under="ignore"):
        squared = np.float64(scale) ** 2
        total = squared**2 * summary.squared_norm
        peak = squared * summary.largest
    if not np.isfinite(total) or total > _MAX_SCALED_SQUARED_NORM:
        raise ValueError(
            f"scale={scale!r} is too large: sum((scale^2 x target)^2) = {total:.3g} would overflow float32 "
            f"while training (limit {_MAX_SCALED_SQUARED_NORM:.3g}); use a smaller scale, e.g. the default 100 "
            "(cosine similarities of the vectors do not depend on it)."
        )
    if peak < _MIN_SCALED_MAX:
        raise ValueError(
            f"scale={scale!r} is too small: scale^2 x max|target| = {peak:.3g} underflows float32; "
            "use a larger scale, e.g. the default 100."
        )


@renamed_parameters(target_key="coexpression_key")
@shared_docs
def embed(
    adata: Any,
    coexpression_key: str = Key.COEXPRESSION,
    *,
    n_components: int = 50,
    method: str = "genevector",
    epochs: int | None = None,
    lr: float = 0.05,
    tol: float | str | None = "auto",
    init: str = "spectral",
    scale: float = 100.0,
    x_max: float = 100.0,
    alpha: float = 0.75,
    vectors: str = "default",
    device: str = "auto",
    seed: int = 0,
    key_added: str = Key.GENE_VECTORS,
    progress: bool = True,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Train gene vectors that reproduce a co-expression target.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``) holding ``varp[coexpression_key]`` from
        :func:`geneverse.tl.coexpression`.
    coexpression_key
        The co-expression matrix to learn from (e.g. ``"gv_mi"``; ``"gv_cooccurrence"`` for GloVe).
    n_components
        Vector dimensions. 50 by default, chosen from the quality matrix (``docs/quality.md``): on
        planted programs 50 dimensions matched or beat 100 (GeneVector's and exp2vec's size) in 6
        of 7 settings, most where programs are small or many, and on pbmc68k cells.
    method
        ``"genevector"``: gene vectors ``w`` and context vectors ``c`` with
        ``w_i . c_j ~ scale^2 * target_ij`` for all pairs ``i != j`` (GeneVector's MSE, its ``c``
        scale); ``varm`` gets the mean of ``w`` and ``c`` (GeneVector's ``"average"``).
        ``"glove"``: GloVe's weighted least squares on ``log target`` over positive entries,
        ``f(x) = min(1, (x / x_max)^alpha)``, AdaGrad (exp2vec's defaults: 100 dims, x_max 100,
        lr 0.05, 50 iterations); ``varm`` gets word + context vectors, as exp2vec saves them.
    epochs
        Maximum number of full-batch steps (default 1000 for genevector, 50 for glove).
    lr
        genevector: Adam step relative to the RMS of the initial vectors; glove: AdaGrad rate.
    tol
        Stop when the relative loss change stays below ``tol`` for 5 epochs; ``"auto"`` = 1e-5
        for genevector, no early stop for glove (a fixed number of iterations, as in exp2vec);
        ``None`` never stops early.
    init
        ``"spectral"`` starts from the best rank-``n_components`` fit of the target (randomised
        eigen-decomposition with the unobserved diagonal imputed), which needs far fewer epochs;
        for glove, of the log co-occurrence with each gene's level removed, with biases at the
        levels and steps damped where weights are dense (bulk counts: planted programs ARI 1.00 vs
        0.02 from GloVe's start, ``docs/quality.md``). ``"uniform"`` is GeneVector's U(-1, 1), or
        for glove GloVe's own start and steps (exp2vec's recipe).
    scale
        genevector only: GeneVector's ``c``; the target is multiplied by ``c^2``. Cosine
        similarities do not depend on it. Must be finite and positive, with the squared norm of
        ``scale^2 * target`` small enough to train in float32 (below about 3.4e36).
    x_max, alpha
        glove only: the weighting function.
    vectors
        Which vectors go to ``varm``: ``"average"`` of gene and context vectors (GeneVector's
        choice, the genevector default), ``"sum"`` (exp2vec's, the glove default), ``"gene"`` or
        ``"context"``. For a signed target, directions where the fit needs ``w = -c`` (negative
        eigenvalues of the target: anti-correlated modules) cancel in the average and the sum; the
        gene vectors keep them and compare genes by their whole co-expression profile
        (``w_i C^T`` is gene i's row of the fitted target).
    {doc_device}
    seed
        Seed of the initialisation; the same seed gives the same vectors on the same device.
    key_added
        ``varm`` and ``uns['gv']`` key.
    progress
        Show a progress bar over epochs.
    {doc_mod}
    {doc_copy}

    Notes
    -----
    Training needs little memory beyond the target: above 8,192 genes a float32 ``varp`` is read in
    place and multiplied in float32 (up to 8,192 genes, a float64 copy of at most 512 MB keeps the
    nearly cancelling terms of the loss exact), genevector's loss and gradients come from one product
    of the target with the vectors per epoch (no genes x genes temporary), and GloVe reads the counts
    tile by tile (it keeps weight and log-count tables up to 8,192 genes, 512 MB). A whole
    transcriptome of 20,000 genes thus trains in the target's own 1.6 GB; figures in
    ``docs/scale.md``.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes:

    ``varm[key_added]``
        float32 genes x ``n_components`` (see ``vectors``); genes outside the target's gene subset
        get NaN rows.
    ``uns['gv'][key_added]``
        ``kind``, ``method``, ``coexpression_key``, ``params``, ``genes``, ``loss`` (per epoch),
        ``final_loss``, ``epochs_run``, ``converged``, ``device``, ``seconds``, ``version``.

    Raises
    ------
    KeyError
        ``varp[coexpression_key]`` does not exist.
    ValueError
        Bad parameters (including a ``scale`` whose scaled target would overflow float32); duplicated
        ``var_names``; a target with NaN; negative entries for ``method="glove"``; training diverged.
    TypeError
        ``seed`` is not a non-negative integer (``-1`` gives a ValueError).
    """
    from .._core._embedding import train_genevector, train_glove

    seed = check_seed(seed)
    modality = resolve_modality(adata, mod)
    check_unique_var_names(modality)
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; use one of {METHODS}.")
    if vectors == "default":
        vectors = "average" if method == "genevector" else "sum"
    if vectors not in VECTORS:
        raise ValueError(f"Unknown vectors {vectors!r}; use one of {VECTORS}.")
    n_components = check_positive_int("n_components", n_components)
    epochs = check_positive_int("epochs", _DEFAULT_EPOCHS[method] if epochs is None else epochs)
    lr = check_finite_number("lr", lr, positive=True)
    if method == "genevector":
        scale = check_finite_number("scale", scale, positive=True)
    tol = _DEFAULT_TOL[method] if tol == "auto" else tol
    if tol is not None and not (isinstance(tol, float | int) and tol >= 0):
        raise ValueError(f"tol must be a non-negative number, None or 'auto', got {tol!r}.")
    if not isinstance(key_added, str) or not key_added:
        raise ValueError("key_added must be a non-empty string.")
    if coexpression_storage(modality, coexpression_key) == TOP_K_STORAGE:
        raise ValueError(
            f"varp[{coexpression_key!r}] keeps only each gene's strongest partners (gv.io.compact_coexpression): "
            "its zeros are not co-expression. Recompute the full matrix with gv.tl.coexpression (the cache "
            "returns it in seconds) and train on that."
        )
    genes, target = coexpression_matrix(modality, coexpression_key)  # a view of varp: never written
    summary = _summarise(target)
    if not summary.finite:
        raise ValueError(f"varp[{coexpression_key!r}] contains NaN or infinite values; recompute the target.")
    if len(target) < 2:
        raise ValueError("Training needs a target over at least 2 genes.")
    device = resolve_device(device)
    bar = progress_bar(progress, f"embed {method}")
    if method == "genevector":
        _check_scale(scale, summary)
        result = train_genevector(
            target, n_components=n_components, epochs=epochs, lr=lr, scale=scale, init=init, tol=tol,
            seed=seed, device=device, progress=bar,
        )  # fmt: skip
    else:
        if summary.smallest < 0:
            raise ValueError(
                f"method='glove' needs a non-negative co-occurrence target, but varp[{coexpression_key!r}] has "
                "negative entries; run `gv.tl.coexpression(adata, 'cooccurrence', layer='counts')` and pass "
                "coexpression_key='gv_cooccurrence'."
            )
        result = train_glove(
            target, n_components=n_components, epochs=epochs, lr=lr, x_max=x_max, alpha=alpha, init=init,
            tol=tol, seed=seed, device=device, progress=bar,
        )  # fmt: skip

    chosen = {
        "average": (result.gene_vectors + result.context_vectors) / 2,
        "sum": result.gene_vectors + result.context_vectors,
        "gene": result.gene_vectors,
        "context": result.context_vectors,
    }[vectors]
    stored = np.full((modality.n_vars, n_components), np.nan, dtype=np.float32)
    stored[modality.var_names.get_indexer(genes)] = chosen
    params = {
        "n_components": n_components, "epochs": epochs, "lr": lr, "tol": tol, "seed": seed, "vectors": vectors,
        "init": init,
        **({"scale": scale} if method == "genevector" else {"x_max": x_max, "alpha": alpha}),
    }  # fmt: skip
    record = {
        "kind": "embedding",
        "method": method,
        "target_key": coexpression_key,
        "params": params,
        "genes": np.asarray(genes, dtype=object),
        "loss": result.loss.astype(np.float64),
        "final_loss": float(result.extra.get("final_loss", result.loss[-1])),
        "epochs_run": len(result.loss),
        "converged": bool(result.converged),
        "device": device,
        "seconds": round(result.seconds, 4),
    }
    return write_result(adata, key_added, record, mod=mod, copy=copy, varm={key_added: stored})
