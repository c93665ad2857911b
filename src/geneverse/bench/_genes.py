"""Gene-level evaluation: how well an embedding predicts gene-set membership (cross-validated AUROC)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._core._search import valid_rows
from .._data import gene_names, gene_vectors
from .._docs import shared_docs
from .._utils import check_positive_int, check_seed, resolve_modality

RANDOM_KEY = "random"


def read_gmt(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read a GMT file (MSigDB, Enrichr): one gene set a line, ``name <tab> description <tab> genes...``.

    Parameters
    ----------
    path
        The ``.gmt`` file.

    Returns
    -------
    Dict set name -> genes (in file order, duplicates and empty fields dropped).

    Raises
    ------
    ValueError
        A line lacks genes, two lines name the same set, or the file holds no set.
    """
    sets: dict[str, list[str]] = {}
    lines: dict[str, int] = {}
    with Path(path).open() as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n\r").split("\t")
            if not fields[0].strip():
                continue
            if len(fields) < 3:
                raise ValueError(f"{path}:{number}: a GMT line needs a name, a description and genes (tab-separated).")
            if fields[0] in lines:
                raise ValueError(
                    f"{path}: gene set {fields[0]!r} is defined twice, on lines {lines[fields[0]]} and {number}; "
                    "rename one of them or merge their genes into one line."
                )
            lines[fields[0]] = number
            sets[fields[0]] = list(dict.fromkeys(g.strip() for g in fields[2:] if g.strip()))
    if not sets:
        raise ValueError(f"{path} holds no gene set.")
    return sets


def _fold_auroc(features: np.ndarray, labels: np.ndarray, n_folds: int, seed: int, max_iter: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    scores = np.empty(len(labels))
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for train, test in folds.split(features, labels):
        model = LogisticRegression(class_weight="balanced", max_iter=max_iter)
        model.fit(features[train], labels[train])
        scores[test] = model.decision_function(features[test])
    # pooled out-of-fold scores: one AUROC over every gene, each scored by a model that never saw it
    return float(roc_auc_score(labels, scores))


@shared_docs
def gene_set_auroc(
    adata: Any,
    gene_sets: Mapping[str, Sequence[str]] | str | os.PathLike,
    keys: Sequence[str] | str = ("X_gv",),
    *,
    n_folds: int = 5,
    min_genes: int = 10,
    max_sets: int | None = 50,
    random_baseline: bool = True,
    gene_symbols: str | None = None,
    seed: int = 0,
    max_iter: int = 1000,
    mod: str | None = None,
) -> pd.DataFrame:
    """Cross-validated AUROC of predicting gene-set membership from gene vectors, per embedding and set.

    For each gene set, genes in the set are positives and every other gene with a vector in all
    compared embeddings is a negative; a logistic regression (balanced classes, standardised
    vectors) is trained in stratified ``n_folds``-fold cross-validation and the out-of-fold scores
    give one AUROC. All embeddings are scored on the same genes and folds, so their AUROCs compare.
    ``random_baseline`` adds Gaussian random vectors of the largest dimension (AUROC about 0.5).

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``) with gene vectors in ``varm``.
    gene_sets
        Dict set name -> genes, or a GMT file (:func:`read_gmt`); e.g.
        :func:`geneverse.datasets.hpo_gene_sets`.
    keys
        ``varm`` keys of the embeddings to compare.
    n_folds
        Cross-validation folds (stratified).
    min_genes
        Sets with fewer members among the evaluated genes are skipped (a fold needs positives).
    max_sets
        Evaluate at most this many sets, the largest first (``None``: all; else a positive integer).
    random_baseline
        Also score random vectors (key ``"random"``).
    gene_symbols
        ``var`` column holding the names used in the gene sets (default ``var_names``).
    seed
        Seed of the folds and the random vectors.
    max_iter
        Iterations of the logistic regression solver.
    {doc_mod}

    Returns
    -------
    DataFrame with one row per embedding and set: ``embedding``, ``gene_set``, ``n_genes`` (members
    evaluated), ``n_background``, ``auroc``. ``table.groupby("embedding")["auroc"].mean()`` summarises.
    """
    from sklearn.preprocessing import StandardScaler

    seed = check_seed(seed)
    if max_sets is not None:
        try:
            max_sets = check_positive_int("max_sets", max_sets)
        except ValueError as error:
            raise ValueError(f"{error} Use max_sets=None to evaluate every set.") from None
    modality = resolve_modality(adata, mod)
    check_positive_int("n_folds", n_folds)
    if n_folds < 2:
        raise ValueError("n_folds must be at least 2.")
    keys = [keys] if isinstance(keys, str) else list(keys)
    if not keys:
        raise ValueError("Name at least one varm key in keys=.")
    if not isinstance(gene_sets, Mapping):
        gene_sets = read_gmt(gene_sets)
    embeddings = {key: gene_vectors(modality, key) for key in keys}
    usable = np.logical_and.reduce([valid_rows(v) for v in embeddings.values()])
    names = np.asarray(gene_names(modality, gene_symbols), dtype=str)[usable]
    if len(names) < 2 * n_folds:
        raise ValueError(f"Only {len(names)} genes have a vector in every embedding; too few to cross-validate.")
    if random_baseline:
        dims = max(v.shape[1] for v in embeddings.values())
        embeddings[RANDOM_KEY] = np.random.default_rng(seed).standard_normal((modality.n_vars, dims))
    features = {key: StandardScaler().fit_transform(v[usable]) for key, v in embeddings.items()}

    members = {name: np.isin(names, list(genes)) for name, genes in gene_sets.items()}
    sizes = {name: int(m.sum()) for name, m in members.items()}
    evaluated = [n for n in sorted(members, key=lambda n: (-sizes[n], n)) if n_folds <= min_genes <= sizes[n]]
    evaluated = [n for n in evaluated if sizes[n] <= len(names) - n_folds][:max_sets]
    if not evaluated:
        raise ValueError(
            f"No gene set has at least min_genes={min_genes} members among the {len(names)} embedded genes "
            "(and min_genes must be >= n_folds); check that the set's gene names match (gene_symbols=)."
        )
    rows = [
        {
            "embedding": key,
            "gene_set": name,
            "n_genes": sizes[name],
            "n_background": len(names) - sizes[name],
            "auroc": _fold_auroc(matrix, members[name], n_folds, seed, max_iter),
        }
        for name in evaluated
        for key, matrix in features.items()
    ]
    return pd.DataFrame(rows)
