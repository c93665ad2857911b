"""Nearest-neighbour queries on gene vectors: similarity, analogies and exact pair search.

Pure numpy. Rows that are not finite (genes without a vector, e.g. missing from an imported
table) or have zero norm are never returned and cannot be queried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._chunks import row_blocks, rows_per_block

METRICS = ("cosine", "dot", "euclidean")
#: Analogy objectives (:meth:`SearchIndex.analogy_scores`).
ANALOGY_METHODS = ("3cosadd", "3cosmul")


def valid_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows with finite values and a nonzero entry."""
    return np.isfinite(vectors).all(axis=1) & (vectors != 0).any(axis=1)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (invalid rows become 0).

    Each row is divided by its largest entry before the norm is taken, so tiny or huge vectors
    (1e-200, 1e200) neither underflow nor overflow.
    """
    valid = valid_rows(vectors)
    clean = np.array(vectors, dtype=np.float64)  # a copy, divided in place below
    clean[~valid] = 0.0
    scale = np.maximum(clean.max(axis=1, initial=0.0), -clean.min(axis=1, initial=0.0))  # max |x|, no temporary
    clean /= np.where(scale > 0, scale, 1.0)[:, None]
    norms = np.linalg.norm(clean, axis=1)
    clean /= np.where(norms > 0, norms, 1.0)[:, None]
    return clean


def top_indices(scores: np.ndarray, n: int, allowed: np.ndarray) -> np.ndarray:
    """Indices of the ``n`` largest allowed scores, best first (ties by index)."""
    candidates = np.flatnonzero(allowed)
    if len(candidates) == 0:
        return candidates
    values = scores[candidates]
    n = min(n, len(candidates))
    part = np.argpartition(-values, n - 1)[:n] if n < len(candidates) else np.arange(len(candidates))
    order = np.lexsort((candidates[part], -values[part]))
    return candidates[part][order]


def similarity_to(vectors: np.ndarray, query: np.ndarray, metric: str) -> np.ndarray:
    """Similarity of every row to ``query``: cosine, dot product, or negative Euclidean distance."""
    if metric == "cosine":
        return unit_rows(vectors) @ unit_rows(np.asarray(query, dtype=np.float64)[None, :])[0]
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; use one of {METRICS}.")
    valid = valid_rows(vectors)
    clean = np.where(valid[:, None], vectors, 0.0).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        scores = clean @ query if metric == "dot" else -np.linalg.norm(clean - query[None, :], axis=1)
    if not np.isfinite(scores[valid]).all():
        raise ValueError(
            f"The vectors are too large for metric={metric!r} (the scores overflow float64); use "
            "metric='cosine', which is scale-free, or rescale the vectors."
        )
    return scores


@dataclass
class SearchIndex:
    """Gene vectors prepared once for cosine queries: unit rows, and the rows that can be answered.

    Built per call by :func:`geneverse.tl.similar` and :func:`~geneverse.tl.analogy`; kept by the
    explorer, which answers many queries on the same vectors.
    """

    unit: np.ndarray
    valid: np.ndarray

    @classmethod
    def build(cls, vectors: np.ndarray) -> SearchIndex:
        return cls(unit_rows(vectors), valid_rows(vectors))

    def _best(self, scores: np.ndarray, n: int, exclude: list[int]) -> tuple[np.ndarray, np.ndarray]:
        allowed = self.valid.copy()
        allowed[exclude] = False
        best = top_indices(scores, n, allowed)
        return best, scores[best]

    def similar(self, row: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` rows with the largest cosine to ``row`` (itself excluded), best first, and the cosines."""
        return self._best(self.unit @ self.unit[row], n, [row])

    def analogy_scores(self, a: int, b: int, c: int, method: str, epsilon: float = 1e-3) -> np.ndarray:
        """Scores for ``a - b + c`` (king - man + woman): 3CosAdd or 3CosMul (Levy & Goldberg, 2014).

        3CosAdd is the cosine with ``â - b̂ + ĉ`` (same ranking as ``cos(x,a) - cos(x,b) + cos(x,c)``);
        3CosMul is ``cos'(x,a) cos'(x,c) / (cos'(x,b) + epsilon)`` with ``cos' = (cos + 1) / 2``.
        """
        unit = self.unit
        if method == "3cosadd":
            target = unit[a] - unit[b] + unit[c]
            norm = np.linalg.norm(target)
            return unit @ (target / norm if norm > 0 else target)
        if method == "3cosmul":
            shifted = (unit @ unit[[a, b, c]].T + 1) / 2
            return shifted[:, 0] * shifted[:, 2] / (shifted[:, 1] + epsilon)
        raise ValueError(f"Unknown analogy method {method!r}; use '3cosadd' or '3cosmul'.")

    def analogy(self, a: int, b: int, c: int, n: int, method: str = "3cosadd") -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best answers to ``a - b + c`` (the three excluded), best first, and their scores."""
        return self._best(self.analogy_scores(a, b, c, method), n, [a, b, c])


@dataclass
class PairHits:
    """Top ordered pairs (x, y) with their cosine to the query difference."""

    first: np.ndarray
    second: np.ndarray
    scores: np.ndarray


def _merge(best: PairHits, first: np.ndarray, second: np.ndarray, scores: np.ndarray, n: int) -> PairHits:
    """Keep the ``n`` best of the current hits and a new batch (ties broken by (x, y))."""
    first = np.concatenate([best.first, first])
    second = np.concatenate([best.second, second])
    scores = np.concatenate([best.scores, scores])
    order = np.lexsort((second, first, -scores))[:n]
    return PairHits(first[order], second[order], scores[order])


def _rescore(
    clean: np.ndarray, along: np.ndarray, squared: np.ndarray, first: np.ndarray, second: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float64 scores of the pairs ``(first, second)`` from their differences; pairs that cannot be scored are dropped.

    Pairs closer than ``1e-12 (|x|^2 + |y|^2)`` count as identical vectors (as in :func:`_all_pairs`).
    The differences are formed in blocks of pairs, so many candidates (genes sharing one vector) stay
    within bounded memory.
    """
    distance2 = np.empty(len(first))
    for block in row_blocks(len(first), rows_per_block(clean.shape[1], largest=None, values=2**22)):  # ~32 MB
        difference = clean[first[block]] - clean[second[block]]
        distance2[block] = np.einsum("ij,ij->i", difference, difference)
    usable = (distance2 > 1e-12 * (squared[first] + squared[second])) & (first != second)
    scores = (along[first[usable]] - along[second[usable]]) / np.sqrt(distance2[usable])
    return first[usable], second[usable], scores


def _block_rows(n_genes: int, block_size: int | None, largest: int) -> int:
    return rows_per_block(n_genes, largest) if block_size is None else block_size


def _all_pairs(clean, along, squared, allowed, n, block_size, progress) -> PairHits:
    """Every ordered pair scored in float64, by row blocks (the reference; used when the screen cannot be)."""
    n_genes = len(clean)
    block_size = _block_rows(n_genes, block_size, 4096)
    best = PairHits(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    columns = np.flatnonzero(allowed)
    starts = range(0, n_genes, block_size)
    for start in progress(starts, total=len(starts)) if progress else starts:
        rows = np.arange(start, min(start + block_size, n_genes))
        rows = rows[allowed[rows]]
        if len(rows) == 0 or len(columns) == 0:
            continue
        gram = clean[rows] @ clean[columns].T
        distance2 = squared[rows, None] + squared[None, columns] - 2 * gram
        scale = squared[rows, None] + squared[None, columns]
        usable = distance2 > 1e-12 * scale
        usable &= rows[:, None] != columns[None, :]
        scores = np.full(distance2.shape, -np.inf)
        distance = np.sqrt(np.maximum(distance2, 0.0))
        np.divide(along[rows, None] - along[None, columns], distance, out=scores, where=usable)
        flat = scores.ravel()
        k = min(n, int(usable.sum()))
        if k == 0:
            continue
        pick = np.argpartition(-flat, k - 1)[:k]
        # include ties with the k-th score so the merge can break them by (x, y), as brute force would
        threshold = flat[pick].min()
        pick = np.flatnonzero(flat >= threshold)
        i, j = np.divmod(pick, len(columns))
        best = _merge(best, rows[i], columns[j], flat[pick], n)
    return best


#: Unit roundoff of float32, the precision of the screen.
_U32 = float(np.finfo(np.float32).eps) / 2
#: The cap of the bound: above 1 by more than float64 rounding can lift an exact score of 1 (aligned pairs).
_JUST_ABOVE_ONE = np.nextafter(np.float32(1.0), np.float32(2.0))


def _screened_pairs(clean, along, squared, allowed, n, block_size, progress) -> PairHits:
    """Exact top-``n`` among pairs pointing along the query (``x.q > y.q``), screened in float32.

    Genes sorted by ``p = x.q/|q|``, so that row ``i`` only meets columns ``j > i``. For each block a
    float32 upper bound of every pair's score is computed, ``(p_x - p_y + e_p) / sqrt(d2_low)``, where
    ``d2_low = (1 - g)(|x|^2 + |y|^2) - 2 x.y`` lies below the true squared distance by more than
    float32 rounding can move it (``g = 4 (dims + 4) u``) and ``e_p`` bounds the rounding of ``p``.
    The bound is capped just above 1 (a cosine; the exact score of an aligned pair can round to 1 plus
    a few ulps). Only pairs whose bound reaches the running n-th best exact score are scored again in
    float64, from their differences (:func:`_rescore`), so the answer is exact; the screen costs one
    float32 product and a few passes over a triangle of the genes x genes scores. (:func:`_all_pairs`,
    the fallback, expands ``|x - y|^2``: for near-identical or aligned vectors its scores can differ
    from these by rounding.)
    """
    genes = np.flatnonzero(allowed)
    genes = genes[np.argsort(-along[genes], kind="stable")]
    m, dims = len(genes), clean.shape[1]
    vectors32 = clean[genes].astype(np.float32)
    p32 = along[genes].astype(np.float32)
    gamma = 4 * (dims + 4) * _U32
    squared_low = ((1 - gamma) * squared[genes]).astype(np.float32)
    error_p = np.float32(4 * _U32 * np.abs(along[genes]).max(initial=0.0))
    block_rows = _block_rows(m, block_size, 2048)
    lower = np.tri(min(block_rows, m), dtype=bool)  # i >= j within a block's own square
    best = PairHits(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    starts = range(0, m, block_rows)
    for start in progress(starts, total=len(starts)) if progress else starts:
        stop = min(start + block_rows, m)
        if start + 1 >= m:  # the last gene alone: no column after it
            continue
        # columns from `start`: the block's own square holds the pairs i >= j, masked below
        bound = vectors32[start:stop] @ vectors32[start:].T
        bound *= -2
        bound += squared_low[None, start:]
        bound += squared_low[start:stop, None]
        np.maximum(bound, np.float32(1e-30), out=bound)
        np.sqrt(bound, out=bound)
        np.divide(p32[start:stop, None] - p32[None, start:] + error_p, bound, out=bound)
        np.minimum(bound, _JUST_ABOVE_ONE, out=bound)  # a cosine: near-identical pairs are bounded by ~1 too
        square = stop - start
        bound[:, :square][lower[:square, :square]] = -np.inf
        flat = bound.ravel()

        def exact(pick: np.ndarray, base: PairHits, start: int = start, width: int = bound.shape[1]) -> PairHits:
            i, j = np.divmod(pick, width)
            first, second, scores = _rescore(clean, along, squared, genes[start + i], genes[start + j])
            keep = scores > 0  # pairs along the query only: the others are below every positive score
            return _merge(base, first[keep], second[keep], scores[keep], n)

        if len(best.scores) < n:  # no threshold yet: score the block's best bounds until n pairs are known
            k = n
            while True:
                k = min(k, flat.size)
                pick = np.argpartition(-flat, k - 1)[:k]
                trial = exact(pick[flat[pick] > 0], best)
                if len(trial.scores) >= n or k == flat.size:
                    break
                k *= 4
            if len(trial.scores) < n:
                best = trial
                continue
            threshold = trial.scores[-1]
        else:
            threshold = best.scores[-1]
        # every pair whose bound reaches the n-th best exact score (ties included, for the (x, y) order)
        best = exact(np.flatnonzero(flat >= threshold), best)
    return best


def similar_pairs(
    vectors: np.ndarray,
    a: int,
    b: int,
    n: int = 10,
    exclude: np.ndarray | None = None,
    block_size: int | None = None,
    progress: Callable | None = None,
) -> PairHits:
    """Exact top-``n`` ordered pairs ``(x, y)`` by ``cos(v_x - v_y, v_a - v_b)`` over all pairs.

    Blocks of rows against all genes: ``|x - y|^2 = |x|^2 + |y|^2 - 2 x.y`` and
    ``(x - y).q = x.q - y.q``, so memory is O(genes x dims + block x genes), never all pair
    differences. Pairs with x == y, excluded genes (the query, invalid rows, ``exclude``) and
    pairs of identical vectors are skipped. When at least ``n`` pairs point along the query (the
    usual case), only those are searched, through a float32 screen that keeps the answer exact
    (:func:`_screened_pairs`); otherwise, or when vectors are too small against the largest for the
    float32 screen, every ordered pair is scored in float64. ``progress`` is a tqdm-like factory
    for a bar over the blocks, or ``None``.
    """
    valid = valid_rows(vectors)
    allowed = valid.copy()
    allowed[[a, b]] = False
    if exclude is not None:
        allowed[exclude] = False
    clean = np.where(valid[:, None], vectors, 0.0).astype(np.float64)
    # cosines are scale-free: one global scale keeps squared norms of huge or tiny vectors finite
    largest = np.abs(clean).max(initial=0.0)
    if largest > 0:
        clean /= largest
    query = clean[a] - clean[b]
    query_norm = np.linalg.norm(query)
    if query_norm == 0:
        raise ValueError("The two query genes have identical vectors, so their difference has no direction.")
    along = clean @ query / query_norm  # x . q / |q|
    squared = (clean**2).sum(axis=1)
    # the float32 screen's bounds hold for vectors within ~1e6 of the largest in length
    if query_norm >= 1e-6 and (squared[allowed] >= 1e-12).all():
        best = _screened_pairs(clean, along, squared, allowed, n, block_size, progress)
        if len(best.scores) >= n:
            return best
    return _all_pairs(clean, along, squared, allowed, n, block_size, progress)
