"""Cell embeddings on labelled data, and cell-embedding speed. Not a unit test: run ``make bench-quality``.

Planted programs over many data settings are in ``benchmarks/quality_matrix.py`` (run first by
``make bench-quality``).

1. pbmc68k against ``bulk_labels`` (10 FACS-sorted populations), and scirpy's bundled 200 T cells
   of wu2020 (raw counts, 2,000 highly variable genes) against ``cluster_orig`` (16 clusters), all
   in one run: geneverse's cell embedding (``cell_embed`` with its default TF-IDF weights of the
   counts, and with the peer's weighting, the log-normalised X), PCA-50 of the same data unscaled
   and scaled (scanpy's tutorials: ``sc.pp.scale``, then PCA), and on pbmc68k genevector 1.0.0's
   ``CellEmbedding`` after training its model on its own MI estimator (``genevector_mi``;
   ``--peer-epochs``, default 200). Scored by k-means (k = the number of labels, 5 seeds, mean) and
   by Leiden on a 15-NN graph (resolution 1.0): ARI and AMI; and 10-NN label accuracy. Genes:
   5-fold cross-validated AUROC of HPO gene-set membership (``gv.bench.gene_set_auroc``, the 40
   largest sets among the data's genes) from the gene vectors, the PCA-50 loadings and random vectors.
2. ``cell_embed`` speed on synthetic sparse counts (2,000 genes, 5% nonzero, 100 dims): 100,000 and
   1,000,000 cells, seconds and cells per second, against the peer's per-cell loop on pbmc68k.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def scores(representation: np.ndarray, labels: np.ndarray) -> dict:
    """k-means (as many clusters as labels, 5 seeds) and Leiden ARI/AMI and 10-NN accuracy, by gv.bench.cell_scores."""
    import anndata as ad
    import pandas as pd

    import geneverse as gv

    cells = ad.AnnData(
        X=np.zeros((len(labels), 1), dtype=np.float32),
        obs=pd.DataFrame({"label": labels}, index=[str(i) for i in range(len(labels))]),
        obsm={"rep": representation},
    )
    n_clusters = len(np.unique(labels))
    return gv.bench.cell_scores(cells, "label", "rep", n_clusters=n_clusters).loc["rep"].to_dict()


def genevector_cell_embedding(adata, mi, epochs: int) -> tuple:
    """The peer's own pipeline on the same MI target: train, GeneEmbedding('average'), CellEmbedding.

    Returns the peer's ``CellEmbedding``, its AnnData of cell vectors (``obsm['X_genevector']``) and
    the seconds of training and of the cell embedding.
    """
    import anndata as ad
    import torch
    from genevector.data import GeneVectorDataset
    from genevector.embedding import CellEmbedding, GeneEmbedding
    from genevector.model import GeneVector

    torch.manual_seed(0)
    np.random.seed(0)
    names = [g.upper() for g in mi.index]
    values = mi.to_numpy()
    side_loaded = {a: {b: float(values[i, j]) for j, b in enumerate(names) if i != j} for i, a in enumerate(names)}
    counts = ad.AnnData(X=adata.layers["counts"].copy(), obs=adata.obs[[]].copy(), var=adata.var[[]].copy())
    with tempfile.TemporaryDirectory() as folder:
        vec = str(Path(folder) / "genes.vec")
        started = time.perf_counter()
        dataset = GeneVectorDataset(counts, device="cpu", mi_scores=side_loaded, use_cache=False)
        batch = len(names) * (len(names) - 1) // 2  # its batch when it computes the scores itself
        model = GeneVector(dataset, output_file=vec, emb_dimension=100, c=100.0, batch_size=batch)
        model.train(epochs, threshold=1e-6, update_interval=10**9)
        embedding = GeneEmbedding(vec, dataset, vector="average")
        trained = time.perf_counter() - started
        started = time.perf_counter()
        peer = CellEmbedding(dataset, embedding)
        cells = peer.get_adata()
        seconds = time.perf_counter() - started
    return peer, cells, trained, seconds


def genevector_cells(adata, mi, epochs: int) -> tuple[np.ndarray, float]:
    """The peer's cell vectors in ``adata``'s cell order, and the seconds of its cell embedding."""
    _, cells, _, seconds = genevector_cell_embedding(adata, mi, epochs)
    order = cells.obs_names.get_indexer(adata.obs_names)
    if (order < 0).any():
        raise RuntimeError("genevector dropped cells from its cell embedding")
    return np.asarray(cells.obsm["X_genevector"])[order], seconds


def wu2020() -> tuple:
    """The 200 T cells of Wu et al. 2020 that scirpy ships (its test data: raw counts, 16 clusters), 2,000 HVGs."""
    import importlib.util

    import anndata as ad
    import scanpy as sc

    folder = Path(importlib.util.find_spec("scirpy").submodule_search_locations[0]) / "tests" / "data"
    adata = ad.read_h5ad(folder / "wu2020_200_v0_11.h5ad")
    adata = ad.AnnData(X=adata.X.copy(), obs=adata.obs[["cluster_orig"]].copy(), var=adata.var[[]].copy())
    sc.pp.filter_genes(adata, min_cells=3)
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=2000)
    return adata[:, adata.var["highly_variable"]].copy(), "cluster_orig"


def labelled(name: str, adata, label_key: str, peer_epochs: int | None) -> list[dict]:
    """Cells by geneverse against PCA-50 (unscaled and scaled) and, with ``peer_epochs``, the peer."""
    import scanpy as sc

    import geneverse as gv

    labels = adata.obs[label_key].astype(str).to_numpy()
    gv.tl.coexpression(adata, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(adata, progress=False)
    gv.tl.cell_embed(adata, layer="counts", progress=False)  # the default: TF-IDF weights of the counts
    default = adata.obsm["X_gv_cells"].copy()
    gv.tl.cell_embed(adata, weighting="raw", progress=False)  # X is log-normalised: the peer's weights
    pca = adata.copy()
    sc.pp.pca(pca, n_comps=50, random_state=0)
    scaled = adata.copy()  # as scanpy's tutorials: log-normalised, scaled to unit variance (max 10), PCA
    sc.pp.scale(scaled, max_value=10)
    sc.pp.pca(scaled, n_comps=50, random_state=0)
    rows = [
        {"representation": "geneverse X_gv (default: TF-IDF of counts)", **scores(default, labels)},
        {"representation": "geneverse X_gv (raw log-normalised weights)", **scores(adata.obsm["X_gv_cells"], labels)},
        {"representation": "PCA-50 of log-normalised X", **scores(pca.obsm["X_pca"], labels)},
        {"representation": "PCA-50 of scaled log-normalised X", **scores(scaled.obsm["X_pca"], labels)},
    ]
    # genes: cross-validated AUROC of HPO gene-set membership from the gene vectors, PCA loadings, random
    sets = gv.datasets.hpo_gene_sets(min_size=10, max_size=2000)
    aurocs = gv.bench.gene_set_auroc(pca, sets, ["X_gv", "PCs"], max_sets=40)
    summary = aurocs.groupby("embedding")["auroc"].agg(["mean", "std", "count"])
    gene_sets = {key: {k: float(v) for k, v in row.items()} for key, row in summary.iterrows()}
    shown = ", ".join(f"{key} {row['mean']:.3f} +- {row['std']:.3f}" for key, row in gene_sets.items())
    print(f"{name} HPO gene-set AUROC over {int(summary['count'].iloc[0])} sets: {shown}", flush=True)
    if peer_epochs:
        try:
            gv.tl.coexpression(adata, "genevector_mi", layer="counts", progress=False, use_cache=False)
            mi = gv.get.coexpression(adata, "gv_genevector_mi")
            peer, peer_seconds = genevector_cells(adata, mi, peer_epochs)
            rows.append({"representation": f"genevector X_genevector ({peer_epochs} epochs)", **scores(peer, labels)})
            rows[-1]["cell_embedding_seconds"] = peer_seconds
        except Exception as error:  # noqa: BLE001 - the peer's failure is a result to report
            rows.append({"representation": "genevector X_genevector", "error": repr(error)})
    rows.append({"representation": "gene-set AUROC (HPO)", "gene_sets": gene_sets})
    for row in rows:
        if "gene_sets" in row:
            continue
        if "error" in row:
            print(f"{name} {row['representation']}: failed: {row['error']}", flush=True)
            continue
        print(
            f"{name} {row['representation']:46s} k-means ARI {row['kmeans_ari']:.3f} +- {row['kmeans_ari_sd']:.3f} "
            f"AMI {row['kmeans_ami']:.3f} | Leiden ({row['leiden_clusters']} clusters) ARI {row['leiden_ari']:.3f} "
            f"AMI {row['leiden_ami']:.3f} | 10-NN accuracy {row['knn_accuracy']:.3f}",
            flush=True,
        )
    return rows


def cell_embed_speed() -> list[dict]:
    import anndata as ad
    import scipy.sparse as sp

    import geneverse as gv

    rng = np.random.default_rng(0)
    n_genes, dims = 2000, 100
    vectors = rng.normal(size=(n_genes, dims)).astype(np.float32)
    rows = []
    for n_cells in (100_000, 1_000_000):
        per_cell = int(n_genes * 0.05)  # 100 detected genes per cell (before merging repeats)
        indptr = np.arange(n_cells + 1, dtype=np.int64) * per_cell
        indices = np.sort(rng.integers(0, n_genes, size=(n_cells, per_cell)), axis=1).ravel()
        data = rng.poisson(1.5, size=n_cells * per_cell).astype(np.float32) + 1
        matrix = sp.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))
        matrix.sum_duplicates()
        adata = ad.AnnData(X=matrix)
        adata.varm["X_gv"] = vectors
        started = time.perf_counter()
        gv.tl.cell_embed(adata, progress=False)
        seconds = time.perf_counter() - started
        rows.append({"cells": n_cells, "seconds": seconds, "cells_per_s": n_cells / seconds, "nnz": int(matrix.nnz)})
        print(
            f"cell_embed {n_cells:>9,d} cells x {n_genes} genes ({matrix.nnz:,d} nonzeros) -> {dims} dims: "
            f"{seconds:.1f} s ({n_cells / seconds:,.0f} cells/s)",
            flush=True,
        )
        del adata, matrix
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-epochs", type=int, default=200, help="epochs for genevector's model (default 200)")
    parser.add_argument("--skip-speed", action="store_true", help="skip the 1,000,000-cell timing")
    parser.add_argument("--out", default="benchmarks/results", help="folder for quality.json")
    args = parser.parse_args()
    import geneverse as gv
    from geneverse._files import write_text

    results = {"pbmc68k": labelled("pbmc68k", gv.datasets.pbmc68k(), "bulk_labels", args.peer_epochs)}
    results["wu2020"] = labelled("wu2020", *wu2020(), peer_epochs=None)
    if not args.skip_speed:
        results["cell_embed_speed"] = cell_embed_speed()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "quality.json", json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
