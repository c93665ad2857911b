"""Marker-seeded self-training: a classifier on the cells' expression, trained on the cells the markers are surest of.

The marker scores of :mod:`._annotate` read each cell along the genes that share the markers' context.
Self-training (as Garnett, Pliner et al., Nat. Methods 2019, trains on marker-chosen cells) then
lets the rest of the transcriptome speak:

1. **Features** (:func:`expression_components`): the principal components of the cells' standardised
   log-normalised expression (``log1p(10,000 x count / cell total)``, each gene centred and scaled,
   the 2,000 most variable genes at most), computed exactly in three passes over chunks of cells;
   next to them the marker scores, standardised and down-weighted (:data:`SCORE_WEIGHT`).
2. **Rounds** (:func:`self_train`): each type's most confident half of the cells assigned to it
   trains a multinomial logistic regression (L2, classes balanced); its probabilities pick the next
   round's training cells. Three rounds.
3. The last round's logits score every cell.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from scipy.special import softmax

from ._chunks import CellChunks, row_totals, scale_rows

#: Principal components of the expression used as features.
N_COMPONENTS = 50
#: At most this many genes (the most variable ones, by variance of log-normalised expression) enter the components.
MAX_GENES = 2000
#: Counts per cell after normalisation, before log1p (as ``sc.pp.normalize_total(target_sum=1e4)``).
TARGET_SUM = 1e4
#: Weight of the standardised marker scores next to the components (the first scaled to unit sd).
#: Chosen in probes on the data of ``benchmarks/annotate.py`` among 0-0.7: without the scores planted
#: types lost up to 0.04 accuracy; at 0.7 pbmc68k lost about 0.01.
SCORE_WEIGHT = 0.5
#: Each round trains on this fraction of each type's assigned cells, the most confident first.
TOP_FRACTION = 0.5
#: Rounds of training.
ROUNDS = 3
#: Inverse L2 penalty of the logistic regression (sklearn's ``C``).
PENALTY_C = 0.1
#: Training cells per round at most (beyond it, a random subset of the same size from each type).
MAX_TRAINING_CELLS = 50_000


def _log_normalised(chunk: sp.csr_matrix) -> sp.csr_matrix:
    totals = row_totals(chunk)
    out = scale_rows(chunk, TARGET_SUM / np.where(totals > 0, totals, 1.0))
    out.data = np.log1p(out.data)
    return out


def _moments(chunk: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    y = _log_normalised(chunk)
    return np.asarray(y.sum(axis=0)).ravel(), np.asarray(y.multiply(y).sum(axis=0)).ravel()


def _gram(chunk: sp.csr_matrix, genes: np.ndarray) -> np.ndarray:
    y = _log_normalised(chunk)[:, genes]
    return np.asarray((y.T @ y).toarray())


def _project(chunk: sp.csr_matrix, genes: np.ndarray, loadings: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return np.asarray(_log_normalised(chunk)[:, genes] @ loadings) - offset


def expression_components(
    chunks: CellChunks,
    n_components: int = N_COMPONENTS,
    max_genes: int = MAX_GENES,
    progress: Callable | None = None,
) -> np.ndarray:
    """Cells x components: PCA scores of the standardised log-normalised expression.

    Exact: gene moments in one pass, the genes' covariance in a second (sparse products per chunk),
    its leading eigenvectors, and the projection in a third. Genes constant over the cells are left
    out; of the rest, the ``max_genes`` most variable. At most ``min(n_cells, genes) - 1`` components;
    none (cells x 0) when fewer than two genes vary or there are fewer than three cells.

    Parameters
    ----------
    chunks
        Cells x genes counts, streamed.
    n_components
        Components wanted.
    max_genes
        Genes at most, the most variable first.
    progress
        tqdm-like factory for the projection pass, or ``None``.
    """
    n = chunks.n_cells
    sums, squares = chunks.map_reduce(_moments)
    mean = sums / n
    variance = np.maximum(squares / n - mean**2, 0.0)
    varying = np.flatnonzero(variance > 1e-12 * np.maximum(mean**2, 1.0))
    if len(varying) < 2 or n < 3:  # no component to find: the classifier then reads the marker scores alone
        return np.zeros((n, 0))
    genes = varying[np.argsort(-variance[varying], kind="stable")[:max_genes]]
    genes.sort()
    sd = np.sqrt(variance[genes])
    gram = chunks.map_reduce(lambda chunk: _gram(chunk, genes))
    covariance = (gram / n - np.outer(mean[genes], mean[genes])) / np.outer(sd, sd)
    k = int(min(n_components, len(genes) - 1, n - 1))
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][:k]
    vectors = vectors[:, order]
    vectors *= np.where(vectors[np.abs(vectors).argmax(axis=0), np.arange(k)] < 0, -1.0, 1.0)  # a fixed sign
    loadings = vectors / sd[:, None]
    offset = mean[genes] @ loadings
    return chunks.map_concat(lambda chunk: _project(chunk, genes, loadings, offset), progress)


def training_features(components: np.ndarray, scores: np.ndarray, score_weight: float = SCORE_WEIGHT) -> np.ndarray:
    """The classifier's features: components over the first one's sd, then the standardised marker scores x weight."""
    lead = float(components[:, 0].std()) if components.shape[1] else 1.0
    spread = scores.std(axis=0)
    standard = (scores - scores.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    return np.hstack([components / (lead if lead > 0 else 1.0), score_weight * standard])


def _confident(probs: np.ndarray, eligible: np.ndarray, fraction: float) -> np.ndarray:
    """Each type's most probable ``fraction`` of the eligible cells whose top type it is (at least one)."""
    best = probs.argmax(axis=1)
    chosen = np.zeros(len(probs), dtype=bool)
    for t in range(probs.shape[1]):
        members = np.flatnonzero((best == t) & eligible)
        if len(members):
            keep = max(int(np.ceil(fraction * len(members))), 1)
            chosen[members[np.argsort(-probs[members, t], kind="stable")[:keep]]] = True
    return chosen


def self_train(
    probs: np.ndarray,
    features: np.ndarray,
    eligible: np.ndarray,
    *,
    rounds: int = ROUNDS,
    fraction: float = TOP_FRACTION,
    penalty_c: float = PENALTY_C,
    max_training_cells: int = MAX_TRAINING_CELLS,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """Logits (cells x types) of a logistic regression self-trained from the marker probabilities.

    Parameters
    ----------
    probs
        Cells x types starting probabilities (the markers').
    features
        Cells x features (:func:`training_features`).
    eligible
        Cells that may train (e.g. not the ones with nothing to go by).
    rounds, fraction, penalty_c, max_training_cells, seed
        See the module constants; ``seed`` draws the subset beyond ``max_training_cells``.

    Returns
    -------
    The logits (``-inf`` for a type that no cell trained for), and a summary: training cells per
    round and the types that trained. ``None`` in place of the logits when fewer than two types have
    a cell to train on.
    """
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    current = probs
    logits = None
    trained_cells: list[int] = []
    classes = np.arange(probs.shape[1])
    for _ in range(rounds):
        chosen = np.flatnonzero(_confident(current, eligible, fraction))
        if len(chosen) > max_training_cells:  # the same cap for every type, so that rare types keep their cells
            labels = current[chosen].argmax(axis=1)
            cap = max(max_training_cells // probs.shape[1], 1)
            chosen = np.sort(
                np.concatenate(
                    [
                        rng.choice(members, min(cap, len(members)), replace=False)
                        for members in (chosen[labels == t] for t in np.unique(labels))
                    ]
                )
            )
        labels = current[chosen].argmax(axis=1)
        classes = np.unique(labels)
        if len(classes) < 2:
            return None, {"training_cells": trained_cells, "trained_types": classes.tolist()}
        model = LogisticRegression(C=penalty_c, class_weight="balanced", max_iter=2000)
        model.fit(features[chosen], labels)
        raw = model.decision_function(features)
        raw = raw[:, None] * np.array([-0.5, 0.5]) if raw.ndim == 1 else raw  # two classes: sklearn's one column
        logits = np.full(probs.shape, -np.inf)
        logits[:, model.classes_] = raw
        current = softmax(logits, axis=1)
        trained_cells.append(len(chosen))
    return logits, {"training_cells": trained_cells, "trained_types": classes.tolist()}
