"""Gene programs from gene vectors: cosine kNN graph + Leiden, or k-means; central genes first."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from ._chunks import rows_per_block
from ._search import unit_rows


def cosine_knn_graph(
    vectors: np.ndarray, n_neighbors: int, block_size: int | None = None, progress: Callable | None = None
) -> sp.csr_matrix:
    """Symmetric weighted kNN graph: each gene to its ``n_neighbors`` most cosine-similar genes.

    Weights are the cosine similarities clipped at 0 (anti-similar genes are not neighbours);
    the graph is symmetrised with the larger weight of the two directions. Blocks of rows keep
    memory at O(block x genes): by default about 2**23 similarities per block (32 MB of float32,
    plus argpartition's int64 indices), whatever the number of genes. ``progress`` is a tqdm-like
    factory for a bar over the blocks, or ``None``.
    """
    unit = unit_rows(vectors)
    n = len(unit)
    k = min(n_neighbors, n - 1)
    block_size = block_size or rows_per_block(n)
    rows, cols, weights = [], [], []
    starts = range(0, n, block_size)
    for start in progress(starts, total=len(starts)) if progress else starts:
        block = np.arange(start, min(start + block_size, n))
        similarity = unit[block] @ unit.T
        similarity[np.arange(len(block)), block] = -np.inf  # no self loops
        nearest = np.argpartition(similarity, n - k, axis=1)[:, n - k :]  # the k largest, no negated copy
        rows.append(np.repeat(block, k))
        cols.append(nearest.ravel())
        weights.append(np.take_along_axis(similarity, nearest, axis=1).ravel())
    graph = sp.csr_matrix(
        (np.clip(np.concatenate(weights), 0, None), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    graph = graph.maximum(graph.T).tocsr()
    graph.eliminate_zeros()
    return graph


def cosine_threshold_graph(
    vectors: np.ndarray, threshold: float, max_edges: int, block_size: int | None = None
) -> sp.csr_matrix:
    """Symmetric graph of every gene pair whose cosine similarity is at least ``threshold`` (> 0).

    Weights are the cosines; no self loops. Blocks of rows keep memory at O(block x genes), and
    more than ``max_edges`` edges (counting each pair once) raise before the graph is built.
    """
    unit = unit_rows(vectors)
    n = len(unit)
    block_size = block_size or rows_per_block(n)
    rows, cols, weights = [], [], []
    n_edges = 0
    for start in range(0, n, block_size):
        block = np.arange(start, min(start + block_size, n))
        similarity = unit[block] @ unit.T
        similarity[np.arange(n)[None, :] <= block[:, None]] = 0.0  # each pair once (column > row)
        i, j = np.nonzero(similarity >= threshold)
        n_edges += len(i)
        if n_edges > max_edges:
            raise ValueError(
                f"More than {max_edges:,} gene pairs have a cosine >= {threshold}; raise the threshold, "
                "use n_neighbors, or raise max_edges."
            )
        rows.append(block[i])
        cols.append(j)
        weights.append(similarity[i, j])
    upper = sp.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n), dtype=np.float64
    )
    return (upper + upper.T).tocsr()


#: Leiden iterations (``sc.tl.leiden(flavor="igraph")``'s choice); recorded with every result.
LEIDEN_ITERATIONS = 2


def leiden(graph: sp.csr_matrix, resolution: float, seed: int) -> np.ndarray:
    """Leiden communities (RB configuration model, weighted), two iterations as ``sc.tl.leiden(flavor="igraph")``.

    Iterating to convergence (``n_iterations=-1``) took 2-5 times longer on the quality matrix's
    gene graphs and changed no program ARI by more than 0.03 either way (``docs/quality.md``).
    """
    import igraph
    import leidenalg

    coo = sp.triu(graph, k=1).tocoo()
    network = igraph.Graph(n=graph.shape[0], edges=list(zip(coo.row.tolist(), coo.col.tolist(), strict=True)))
    network.es["weight"] = coo.data.tolist()
    partition = leidenalg.find_partition(
        network,
        leidenalg.RBConfigurationVertexPartition,
        weights="weight",
        resolution_parameter=resolution,
        seed=seed,
        n_iterations=LEIDEN_ITERATIONS,
    )
    return np.asarray(partition.membership)


def kmeans(vectors: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """k-means on unit-length vectors (spherical k-means in effect), exp2vec's choice."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(unit_rows(vectors))


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters so that 0 is the largest (ties by first appearance)."""
    values, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = values[np.lexsort((first, -counts))]
    mapping = np.empty(values.max() + 1, dtype=np.int64)
    mapping[order] = np.arange(len(order))
    return mapping[labels]


def central_order(vectors: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Members sorted by cosine to their program's mean direction (most central first), with the cosines."""
    unit = unit_rows(vectors[members])
    centre = unit.mean(axis=0)
    norm = np.linalg.norm(centre)
    closeness = unit @ (centre / norm if norm > 0 else centre)
    order = np.lexsort((members, -closeness))
    return members[order], closeness[order]


def expression_bins(means: np.ndarray, n_bins: int) -> np.ndarray:
    """Each gene's bin (0 .. n_bins - 1) by mean expression, equal-sized bins, ties in gene order (scanpy)."""
    ranks = np.empty(len(means), dtype=np.float64)
    ranks[np.argsort(means, kind="stable")] = np.arange(len(means))
    return np.floor(ranks * n_bins / len(means)).astype(int)


def score_weights(
    members: list[np.ndarray], bins: np.ndarray, ctrl_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Weights scoring programs as ``sc.tl.score_genes`` does, all programs at once.

    Column ``k`` averages program ``k``'s genes (``+1 / n``) and subtracts the mean of its control
    genes (``-1 / n_controls``): for each expression bin holding program genes, ``ctrl_size`` genes
    of that bin outside the program, drawn without replacement.

    Parameters
    ----------
    members
        Gene indices of each program.
    bins
        Expression bin of every gene (:func:`expression_bins`).
    ctrl_size
        Control genes per bin (0: plain means).
    rng
        Random generator for the draws.

    Returns
    -------
    genes x programs weights, and each program's control gene indices (sorted).
    """
    n_genes = len(bins)
    weights = np.zeros((n_genes, len(members)))
    controls = []
    for column, genes in enumerate(members):
        weights[genes, column] += 1.0 / len(genes)
        chosen: list[int] = []
        if ctrl_size:
            outside = np.ones(n_genes, dtype=bool)
            outside[genes] = False
            for b in np.unique(bins[genes]):
                pool = np.flatnonzero(outside & (bins == b))
                chosen.extend(rng.choice(pool, size=min(ctrl_size, len(pool)), replace=False).tolist())
        picked = np.unique(np.asarray(chosen, dtype=int))
        if len(picked):
            weights[picked, column] -= 1.0 / len(picked)
        controls.append(picked)
    return weights, controls
