"""Cell-level evaluation: clusters of a representation against known labels, and k-NN label accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._docs import shared_docs
from .._utils import check_positive_int, check_seed, resolve_modality


def _representation(adata: Any, key: str) -> np.ndarray:
    if key not in adata.obsm:
        raise KeyError(f"No cell representation obsm[{key!r}]; available: {list(adata.obsm.keys())}.")
    values = np.asarray(adata.obsm[key], dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != adata.n_obs:
        raise ValueError(f"obsm[{key!r}] must be cells x dims; got shape {values.shape}.")
    if not np.isfinite(values).all():
        raise ValueError(f"obsm[{key!r}] holds NaN or infinite values; drop or fill those cells first.")
    return values


def _codes(values: Any, name: str) -> np.ndarray:
    """Integer codes of labels; a missing label raises (factorize would give it -1, the last group)."""
    codes, _ = pd.factorize(np.asarray(values, dtype=object))
    if (codes < 0).any():
        raise ValueError(f"{name} hold {int((codes < 0).sum())} missing values; drop those cells or label them.")
    return codes


def _other_neighbours(representation: np.ndarray, k: int) -> np.ndarray:
    """Each cell's ``k`` nearest other cells (Euclidean), cells x k indices."""
    from sklearn.neighbors import NearestNeighbors

    check_positive_int("k", k)
    n_cells = len(representation)
    if n_cells <= k:
        raise ValueError(f"k={k} needs more than {k} cells; got {n_cells}.")
    _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(representation).kneighbors(representation)
    # drop each cell itself; with duplicated points it may not come first (or at all): remove it by
    # identity, else the farthest of the k + 1
    is_self = neighbours == np.arange(n_cells)[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    return neighbours[~is_self].reshape(n_cells, k)


def batch_mixing(
    representation: np.ndarray, batches: np.ndarray, labels: np.ndarray | None = None, k: int = 15
) -> float:
    """Cross-batch neighbours relative to perfect mixing: 1 when batches mix fully, 0 when apart.

    For each cell, the share of its ``k`` nearest other cells from another batch, divided (over all
    cells) by the share expected if batches were perfectly mixed. With ``labels`` (cell types),
    only types present in two or more batches count, and perfect mixing means a cell's neighbours
    come from the batches in its own type's proportions: a type found in one batch cannot mix
    and is left out, as in scib's iLISI over shared types.

    Parameters
    ----------
    representation
        Cells x dims.
    batches
        One batch per cell.
    labels
        One cell type per cell, or ``None`` (all cells one type).
    k
        Neighbours per cell.

    Returns
    -------
    ``sum(observed other-batch share) / sum(expected share)`` over the counted cells.
    """
    batch_codes = _codes(batches, "batches")
    type_codes = np.zeros(len(batch_codes), dtype=np.intp) if labels is None else _codes(labels, "labels")
    if len(batch_codes) != len(representation) or len(type_codes) != len(representation):
        raise ValueError("representation, batches and labels must have one entry per cell.")
    counts = np.zeros((type_codes.max() + 1, batch_codes.max() + 1))
    np.add.at(counts, (type_codes, batch_codes), 1.0)
    shared = (counts > 0).sum(axis=1) >= 2
    keep = shared[type_codes]
    if not keep.any():
        raise ValueError("No cell type is present in two batches; there is no mixing to measure.")
    rep, batch_codes, type_codes = representation[keep], batch_codes[keep], type_codes[keep]
    others = _other_neighbours(rep, k)
    observed = (batch_codes[others] != batch_codes[:, None]).mean(axis=1)
    in_type = counts[type_codes].sum(axis=1)
    expected = (in_type - counts[type_codes, batch_codes]) / (in_type - 1.0)  # the cell itself is no neighbour
    return float(observed.sum() / expected.sum())


def knn_accuracy(representation: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Share of cells whose label is the majority label of their ``k`` nearest other cells (Euclidean).

    Parameters
    ----------
    representation
        Cells x dims.
    labels
        One label per cell.
    k
        Neighbours voting (the cell itself excluded); ties go to the label seen first among the nearest.

    Returns
    -------
    Accuracy in [0, 1].
    """
    codes = _codes(labels, "labels")
    others = _other_neighbours(representation, k)
    votes = np.zeros((len(codes), codes.max() + 1))
    weights = 1.0 + 1e-6 * np.arange(k, 0, -1)  # break ties towards the nearest neighbours
    np.add.at(votes, (np.repeat(np.arange(len(codes)), k), codes[others].ravel()), np.tile(weights, len(codes)))
    return float(np.mean(votes.argmax(axis=1) == codes))


def _leiden(representation: np.ndarray, n_neighbors: int, resolution: float, seed: int) -> np.ndarray:
    import anndata as ad
    import scanpy as sc

    cells = ad.AnnData(X=np.zeros((len(representation), 1), dtype=np.float32), obsm={"rep": representation})
    sc.pp.neighbors(cells, use_rep="rep", n_neighbors=n_neighbors, random_state=seed)
    sc.tl.leiden(cells, resolution=resolution, flavor="igraph", n_iterations=2, random_state=seed)
    return cells.obs["leiden"].to_numpy()


@shared_docs
def cell_scores(
    adata: Any,
    label_key: str,
    keys: Sequence[str] | str = ("X_gv",),
    *,
    n_clusters: int | None = None,
    kmeans_seeds: int = 5,
    leiden: bool = True,
    resolution: float = 1.0,
    n_neighbors: int = 15,
    knn: int = 10,
    seed: int = 0,
    mod: str | None = None,
) -> pd.DataFrame:
    """How well each cell representation recovers known labels: ARI/AMI of clusters, k-NN accuracy.

    k-means with as many clusters as labels (averaged over ``kmeans_seeds`` seeds), Leiden on
    scanpy's kNN graph of the representation (as ``sc.pp.neighbors(use_rep=...)`` + ``sc.tl.leiden``),
    and the share of cells whose ``knn`` nearest cells mostly share their label. The AnnData is not
    modified.

    Parameters
    ----------
    {doc_adata}
    label_key
        ``obs`` column with the known labels (cells with a missing label are left out).
    keys
        ``obsm`` keys of the representations to compare (e.g. ``"X_gv"``, ``"X_pca"``).
    n_clusters
        k-means clusters (default: the number of labels).
    kmeans_seeds
        k-means runs averaged.
    leiden
        Also cluster with Leiden.
    resolution
        Leiden resolution.
    n_neighbors
        Neighbours of the Leiden graph.
    knn
        Neighbours voting for the k-NN accuracy.
    seed
        Seed of the first k-means run and of Leiden.
    {doc_mod}

    Returns
    -------
    DataFrame indexed by representation with ``kmeans_ari``, ``kmeans_ari_sd``, ``kmeans_ami``,
    ``leiden_ari``, ``leiden_ami``, ``leiden_clusters`` (when ``leiden``) and ``knn_accuracy``.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

    seed = check_seed(seed)
    modality = resolve_modality(adata, mod)
    if label_key not in modality.obs:
        raise KeyError(f"No obs column {label_key!r}; columns: {list(modality.obs.columns)}.")
    keys = [keys] if isinstance(keys, str) else list(keys)
    check_positive_int("kmeans_seeds", kmeans_seeds)
    labels = modality.obs[label_key]
    known = labels.notna().to_numpy()
    labels = labels.astype(str).to_numpy()[known]
    if len(np.unique(labels)) < 2:
        raise ValueError(f"obs[{label_key!r}] needs at least two labels to score clusters.")
    k = n_clusters if n_clusters is not None else len(np.unique(labels))
    check_positive_int("n_clusters", k)
    rows = {}
    for key in keys:
        rep = _representation(modality, key)[known]
        runs = [KMeans(k, n_init=10, random_state=seed + s).fit_predict(rep) for s in range(kmeans_seeds)]
        ari = [adjusted_rand_score(labels, r) for r in runs]
        row = {
            "kmeans_ari": float(np.mean(ari)),
            "kmeans_ari_sd": float(np.std(ari)),
            "kmeans_ami": float(np.mean([adjusted_mutual_info_score(labels, r) for r in runs])),
        }
        if leiden:
            clusters = _leiden(rep, n_neighbors, resolution, seed)
            row |= {
                "leiden_ari": float(adjusted_rand_score(labels, clusters)),
                "leiden_ami": float(adjusted_mutual_info_score(labels, clusters)),
                "leiden_clusters": len(np.unique(clusters)),
            }
        row["knn_accuracy"] = knn_accuracy(rep, labels, knn)
        rows[key] = row
    return pd.DataFrame.from_dict(rows, orient="index")
