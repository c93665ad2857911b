"""Programs refined against the expression: each gene joins the program whose activity it follows.

Clustering gene vectors compares genes one pair at a time, and with few cells, low depth or small
programs a single pair carries little signal. A program's activity, the sum of its genes'
standardised expression in each cell, averages many genes, so a gene's correlation with it is far
less noisy. Starting from the vector clusters, each round:

1. scores every program in every cell from its *core* genes (``z``-scored expression, summed);
2. correlates every gene with every program's score, leaving the gene itself out of its own
   program's score;
3. moves a gene to the program it correlates with most, if that correlation is at least
   ``threshold`` standard errors (``threshold / sqrt(n_cells)``) above 0; other genes keep their
   starting program. The core of each program is the genes placed there by a significant correlation.

Rounds stop when nothing changes, or after ``max_rounds`` (genes near the threshold can go on
flipping in and out of a core); one more pass scores the final programs. Counts (non-negative integers) are
log-normalised first (each cell scaled to the median total, then ``log1p``); other values are used as
given; the cell totals are over the genes given (those with a vector). One streamed pass over the
cells per round: memory is genes x programs plus one chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._chunks import CellChunks, add_parts

#: Standard errors of a correlation (``1 / sqrt(n_cells)``) a gene needs to move to a program.
THRESHOLD = 3.0
#: Most refinement rounds (each one pass over the cells).
MAX_ROUNDS = 5


@dataclass
class Standardised:
    """How each chunk is transformed and standardised: ``z = (t(x) - mean) / sd`` per gene."""

    median_total: float | None
    mean: np.ndarray
    sd: np.ndarray

    def transform(self, chunk: sp.csr_matrix) -> sp.csr_matrix:
        """``log1p(x / cell total * median total)`` for counts, the values as given otherwise."""
        if self.median_total is None:
            return chunk
        totals = np.asarray(chunk.sum(axis=1)).ravel()
        out = chunk.copy()
        scale = self.median_total / np.where(totals > 0, totals, 1.0)
        out.data = np.log1p(out.data * np.repeat(scale, np.diff(out.indptr)))
        return out


def _totals_and_counts(chunk: sp.csr_matrix) -> tuple[np.ndarray, bool]:
    data = chunk.data
    is_counts = bool(data.size == 0 or (data.min() >= 0 and np.all(data == np.rint(data))))
    return np.asarray(chunk.sum(axis=1)), is_counts


def standardise(chunks: CellChunks) -> Standardised:
    """Two passes: cell totals and whether the values are counts, then each gene's mean and sd."""
    parts = chunks.map_list(_totals_and_counts)
    is_counts = all(flag for _, flag in parts)
    totals = np.concatenate([np.ravel(t) for t, _ in parts])
    positive = totals[totals > 0]
    median_total = float(np.median(positive)) if is_counts and positive.size else None
    plain = Standardised(median_total, np.zeros(chunks.n_genes), np.ones(chunks.n_genes))

    def moments(chunk: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        values = plain.transform(chunk)
        return np.asarray(values.sum(axis=0)).ravel(), np.asarray(values.multiply(values).sum(axis=0)).ravel()

    sums, squares = chunks.map_reduce(moments)
    n = chunks.n_cells
    mean = sums / n
    var = np.maximum(squares / n - mean**2, 0.0)
    sd = np.sqrt(var)
    sd[var <= 1e-12 * np.maximum(squares / n, 1e-300)] = 0.0  # constant genes (up to rounding) never move
    return Standardised(median_total, mean, sd)


def _round_sums(
    chunk: sp.csr_matrix, standard: Standardised, weights: np.ndarray, shift: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One chunk's ``T^T S``, ``sum S`` and ``sum S^2`` for the program scores ``S = T @ weights - shift``."""
    values = standard.transform(chunk)
    scores = np.asarray(values @ weights) - shift
    return np.asarray(values.T @ scores), scores.sum(axis=0), (scores**2).sum(axis=0)


def program_correlations(
    chunks: CellChunks, standard: Standardised, labels: np.ndarray, core: np.ndarray, n_programs: int
) -> np.ndarray:
    """Each gene's correlation with each program's score (its core genes' summed ``z``), genes x programs.

    A core gene is left out of its own program's score.
    """
    n_genes, n = len(labels), chunks.n_cells
    genes = np.arange(n_genes)
    varying = standard.sd > 0
    inside = core & varying
    membership = np.zeros((n_genes, n_programs))
    membership[genes[inside], labels[inside]] = 1.0
    weights = membership / np.where(varying, standard.sd, 1.0)[:, None]
    shift = standard.mean @ weights
    products, sums, squares = chunks.map_reduce(lambda c: _round_sums(c, standard, weights, shift), add_parts)
    mean_score = sums / n
    var_score = np.maximum(squares / n - mean_score**2, 0.0)
    # cov(z_g, S_p) = (E[t_g S_p] - mean_g E[S_p]) / sd_g
    cov = (products / n - np.outer(standard.mean, mean_score)) / np.where(varying, standard.sd, 1.0)[:, None]
    var = np.broadcast_to(var_score, cov.shape).copy()
    own = labels[inside]
    # leave the gene out of its own program's score: var(z_g) = 1
    cov[genes[inside], own] -= 1.0
    var[genes[inside], own] = var_score[own] - 2.0 * cov[genes[inside], own] - 1.0
    corr = np.where(var > 1e-12, cov / np.sqrt(np.maximum(var, 1e-12)), 0.0)
    corr[~varying] = 0.0
    return corr


def refine_programs(
    chunks: CellChunks,
    labels: np.ndarray,
    threshold: float = THRESHOLD,
    max_rounds: int = MAX_ROUNDS,
    progress: Callable | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Refine programs (integer labels, one per gene column of ``chunks``) against the expression.

    Returns the new labels (the same numbering; a program may end empty), each gene's correlation
    with its program's final score (left out of it), and a summary: ``rounds`` run, ``converged``,
    ``moved`` (genes whose program changed), ``core`` (genes placed by a significant correlation) and
    ``counts`` (whether the values were log-normalised as counts).
    """
    start = np.asarray(labels, dtype=np.int64)
    if chunks.n_genes != len(start):
        raise ValueError(f"{len(start)} labels for {chunks.n_genes} genes.")
    n_programs = int(start.max()) + 1
    standard = standardise(chunks)
    bound = threshold / np.sqrt(chunks.n_cells)
    current, core = start.copy(), np.ones(len(start), dtype=bool)
    rounds, converged = 0, False
    genes = np.arange(len(start))
    bar = progress(range(max_rounds), total=max_rounds) if progress else None
    try:
        while True:
            corr = program_correlations(chunks, standard, current, core, n_programs)
            if rounds == max_rounds:  # corr belongs to the final programs
                break
            rounds += 1
            if bar is not None:
                bar.update(1)
            best = np.argmax(corr, axis=1)
            significant = corr[genes, best] > bound
            moved_to = np.where(significant, best, start)
            converged = np.array_equal(moved_to, current) and np.array_equal(significant, core)
            if converged:  # corr belongs to the final programs
                break
            current, core = moved_to, significant
    finally:
        if bar is not None:
            bar.close()
    summary = {
        "rounds": rounds,
        "converged": converged,
        "moved": int((current != start).sum()),
        "core": int(core.sum()),
        "counts": standard.median_total is not None,
    }
    return current, corr[genes, current], summary
