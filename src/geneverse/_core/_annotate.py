"""Marker-based cell-type probabilities from gene vectors and expression (no AnnData here).

Each type's direction is the mean unit vector of its markers minus that of its negative markers.
Two scores of a cell for a type:

- ``expression`` (the default of ``gv.tl.annotate``): every gene is weighted by how well its vector
  points along the type's direction (the cosine, negatives set to 0, squared), the weights of a type
  scaled to unit length; the score is the cell's TF-IDF expression (as ``cell_embed`` weighs it)
  summed with those weights. The markers reach the genes that share their context, and the cell is
  read from its expression rather than from its 50-dimensional summary.
- ``vectors``: the cosine between the cell's vector (``cell_embed``) and the type's direction.

Probabilities are a softmax of the scores at a temperature relative to the scores' spread, so they
do not depend on the scale of one embedding or one data set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.special import log_softmax, softmax

from ._cells import weighted_sums
from ._chunks import CellChunks
from ._search import top_indices, unit_rows

#: Softmax temperature of the ``vectors`` scores as a fraction of their standard deviation (over
#: cells and types), fitted by maximum likelihood on planted cell types (``benchmarks/annotate.py``:
#: 15 fits over 3 seeds and 2-20 markers per type, wrong markers included, gave 0.37-0.57, median 0.40).
RELATIVE_TEMPERATURE = 0.40
#: The same for the ``expression`` scores, fitted the same way (the 15 fits gave 0.31-0.42, median 0.33).
EXPRESSION_RELATIVE_TEMPERATURE = 0.33
#: The same for the logits of the self-trained classifier (``refine``, :mod:`._selftrain`), fitted the same
#: way on its logits (the 15 fits gave 0.32-0.35, median 0.33).
REFINED_RELATIVE_TEMPERATURE = 0.33
#: Power of the rectified cosines that weigh the genes in the ``expression`` scores (chosen in
#: ``benchmarks/annotate.py`` among 1-4: 2 was best on wu2020 and level on pbmc68k).
EXPRESSION_POWER = 2


def marker_directions(
    vectors: np.ndarray, up: Sequence[np.ndarray], down: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """Unit direction per type (dims x types): mean unit vector of ``up`` minus that of ``down``.

    Parameters
    ----------
    vectors
        genes x dims gene vectors.
    up, down
        For each type, the row indices of its markers (non-empty) and of its negative markers.
    """
    unit = unit_rows(vectors)
    columns = []
    for i, genes in enumerate(up):
        if len(genes) == 0:
            raise ValueError(f"Type {i} has no marker.")
        direction = unit[np.asarray(genes)].mean(axis=0)
        if down is not None and len(down[i]):
            direction = direction - unit[np.asarray(down[i])].mean(axis=0)
        columns.append(direction)
    return unit_rows(np.stack(columns)).T


def cosine_scores(cells: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Cosines between each cell vector and each type's direction, cells x types (0 for a zero cell)."""
    return unit_rows(cells) @ directions


def gene_profiles(vectors: np.ndarray, directions: np.ndarray, power: float = EXPRESSION_POWER) -> np.ndarray:
    """Each type's gene weights (genes x types): ``max(0, cos(gene, direction)) ** power``, columns of unit length.

    Rows of genes without a finite vector are 0.
    """
    unit = unit_rows(np.where(np.isfinite(vectors).all(axis=1, keepdims=True), vectors, 0.0))
    weights = np.maximum(unit @ directions, 0.0) ** power
    norms = np.linalg.norm(weights, axis=0, keepdims=True)
    return weights / np.where(norms > 0, norms, 1.0)


def expression_scores(chunks: CellChunks, profiles: np.ndarray, progress: Callable | None = None) -> np.ndarray:
    """Cells x types: each cell's TF-IDF expression (share of its total x idf) summed with each type's gene weights.

    The same weighted sum as ``cell_embed``'s, with the types' gene weights in place of the vectors.
    """
    return weighted_sums(chunks, profiles, "tfidf", progress)


def _group_sums(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The groups (sorted), each row's group index, and the rows of ``values`` summed per group."""
    names, inverse = np.unique(groups, return_inverse=True)
    sums = np.zeros((len(names), values.shape[1]))
    np.add.at(sums, inverse, values)
    return names, inverse, sums


def group_means(scores: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each cell's scores replaced by the mean over the cells of its group."""
    names, inverse, sums = _group_sums(scores, groups)
    counts = np.bincount(inverse, minlength=len(names))[:, None]
    return (sums / counts)[inverse]


def temperature(scores: np.ndarray, relative: float = RELATIVE_TEMPERATURE) -> float:
    """The softmax temperature: ``relative`` times the scores' standard deviation (1e-12 at least)."""
    return max(float(relative) * float(np.std(scores)), 1e-12)


def probabilities(scores: np.ndarray, softmax_temperature: float) -> np.ndarray:
    """Softmax over types of ``scores / softmax_temperature`` (from :func:`temperature`); rows sum to 1."""
    return softmax(scores / softmax_temperature, axis=1)


def fit_relative_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The relative temperature that maximises the likelihood of known labels (codes 0..types-1).

    Used to calibrate :data:`RELATIVE_TEMPERATURE` on planted data, never on evaluation labels.
    """
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels)
    spread = temperature(scores, 1.0)

    def loss(log_relative: float) -> float:
        return -float(
            log_softmax(scores / (np.exp(log_relative) * spread), axis=1)[np.arange(len(labels)), labels].mean()
        )

    return float(np.exp(minimize_scalar(loss, bounds=(-6.0, 3.0), method="bounded").x))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """ECE: the mean over confidence bins of |accuracy - confidence|, weighted by the bins' share of cells."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    error = 0.0
    for b in np.unique(bins):
        members = bins == b
        error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def group_directions(cells: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The groups (sorted) and each group's unit mean of its cells' unit vectors (dims x groups)."""
    names, _, sums = _group_sums(unit_rows(cells), groups)
    return names, unit_rows(sums).T


def top_per_column(vectors: np.ndarray, directions: np.ndarray, n: int, lowest: bool = False):
    """Row indices (n x columns) of the ``n`` best cosines to each direction, best first, and those cosines.

    Each column is ranked by :func:`~geneverse._core._search.top_indices` (ties by row index), one
    call per direction (per group of cells, not per gene).
    """
    cosines = unit_rows(vectors) @ directions
    ranked = -cosines if lowest else cosines
    everyone = np.ones(len(cosines), dtype=bool)
    order = np.stack([top_indices(ranked[:, j], n, everyone) for j in range(cosines.shape[1])], axis=1)
    return order, np.take_along_axis(cosines, order, axis=0)
