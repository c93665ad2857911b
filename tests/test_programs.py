"""Programs, program scores and cell embeddings: planted truth, hand-computed values, storage."""

from __future__ import annotations

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp
from anndata import AnnData
from sklearn.metrics import adjusted_rand_score, roc_auc_score

import geneverse as gv


def two_programs(n_per: int = 15, dims: int = 8, seed: int = 0) -> AnnData:
    """Gene vectors around two orthogonal directions, plus genes without a vector."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dims)[:2] * 5
    vectors = np.vstack([centres[i] + rng.normal(scale=0.5, size=(n_per, dims)) for i in range(2)])
    vectors = np.vstack([vectors, np.full((2, dims), np.nan)])
    adata = AnnData(X=sp.csr_matrix(rng.poisson(1.0, size=(40, len(vectors))).astype(np.float32)))
    adata.var_names = [f"a{i}" for i in range(n_per)] + [f"b{i}" for i in range(n_per)] + ["x0", "x1"]
    adata.varm["X_gv"] = vectors.astype(np.float32)
    adata.var["truth"] = ["A"] * n_per + ["B"] * n_per + [None, None]
    return adata


@pytest.mark.parametrize(("method", "kwargs"), [("leiden", {"resolution": 0.5}), ("kmeans", {"n_clusters": 2})])
def test_two_separated_programs_are_found(method, kwargs):
    adata = two_programs()
    gv.tl.programs(adata, method=method, **kwargs)
    found = adata.var["gv_program"]
    assert found.isna().tolist()[-2:] == [True, True]  # genes without a vector get no program
    keep = found.notna().to_numpy()
    assert adjusted_rand_score(adata.var["truth"][keep], found[keep]) == 1.0
    record = adata.uns["gv"]["gv_program"]
    assert set(record["programs"]) == set(found.cat.categories) == {"P0", "P1"}
    for name, genes in record["programs"].items():
        assert set(genes) == set(adata.var_names[(found == name).to_numpy()])
        assert np.all(np.diff(record["centrality"][name]) <= 1e-12)  # most central first


def test_planted_programs_from_counts_to_programs():
    data = gv.datasets.synthetic(1500, 60, 3, seed=0, genes_per_program=20)
    gv.tl.coexpression(data, layer="counts", target_kwargs={"include_double_zeros": True}, progress=False)
    gv.tl.embed(data, progress=False)
    gv.tl.programs(data, method="kmeans", n_clusters=3)
    assert adjusted_rand_score(data.var["program"], data.var["gv_program"]) > 0.9


def test_default_pipeline_separates_overlapping_programs():
    # the quality matrix's overlap setting: a fifth of each program's genes also belong to the next
    # one and bridge the two in the kNN graph; at resolution 1.0 Leiden merges such pairs, the
    # default 1.5 keeps them apart
    data = gv.datasets.synthetic(3000, 1000, 8, seed=0, genes_per_program=30, overlap=0.2)
    gv.tl.coexpression(data, layer="counts", progress=False)
    gv.tl.embed(data, progress=False)
    truth, second = data.var["program"].astype(str), data.var["second_program"].astype(str)
    scored = ((truth != "none") & (second == "none")).to_numpy()
    ari = {}
    for resolution in (1.0, None):  # the clusters of the vectors alone: what the resolution decides
        gv.tl.programs(data, refine=False, **({} if resolution is None else {"resolution": resolution}))
        ari[resolution] = adjusted_rand_score(truth[scored], data.var["gv_program"].astype(str)[scored])
    expected = {"resolution": 1.5, "n_neighbors": 15, "n_iterations": 2, "seed": 0}
    assert data.uns["gv"]["gv_program"]["params"] == expected
    assert ari[None] > 0.9 > ari[1.0]
    gv.tl.programs(data)  # the default also refines them against the counts: no worse
    assert adjusted_rand_score(truth[scored], data.var["gv_program"].astype(str)[scored]) >= ari[None] - 0.01


def test_score_programs_hand_computed_without_controls():
    X = np.array([[1.0, 3.0, 0.0, 2.0], [0.0, 1.0, 4.0, 4.0], [2.0, 2.0, 2.0, 0.0]])
    adata = AnnData(X=sp.csr_matrix(X))
    adata.var_names = ["g0", "g1", "g2", "g3"]
    gv.tl.score_programs(adata, {"first": ["g0", "g1"], "last": ["g3"]}, ctrl_size=0, chunk_size=2, progress=False)
    scores = adata.obsm["gv_programs"]
    assert isinstance(scores, pd.DataFrame) and list(scores.columns) == ["first", "last"]
    np.testing.assert_allclose(scores["first"], X[:, :2].mean(axis=1))
    np.testing.assert_allclose(scores["last"], X[:, 3])


def test_score_programs_with_background_matches_its_definition():
    data = gv.datasets.synthetic(300, 80, 2, seed=1, genes_per_program=10)
    sc.pp.normalize_total(data)
    sc.pp.log1p(data)
    program = list(data.var_names[data.var["program"] == "P0"])
    gv.tl.score_programs(data, {"P0": program}, ctrl_size=5, n_bins=4, seed=3, progress=False)
    controls = list(data.uns["gv"]["gv_programs"]["controls"]["P0"])
    assert controls and not set(controls) & set(program)
    X = data.X.toarray()
    expected = X[:, data.var_names.get_indexer(program)].mean(1) - X[:, data.var_names.get_indexer(controls)].mean(1)
    np.testing.assert_allclose(data.obsm["gv_programs"]["P0"], expected, atol=1e-5)
    # the planted program's cells score higher (measured AUC 0.88 on these sparse counts)
    assert roc_auc_score(data.obs["cell_type"] == "type0", data.obsm["gv_programs"]["P0"]) > 0.8


def test_programs_and_scores_round_trip(tmp_path):
    adata = two_programs()
    gv.tl.programs(adata, method="kmeans", n_clusters=2)
    gv.tl.score_programs(adata, ctrl_size=3, n_bins=2, progress=False)
    path = tmp_path / "p.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    pd.testing.assert_frame_equal(back.obsm["gv_programs"], adata.obsm["gv_programs"])
    assert back.var["gv_program"].equals(adata.var["gv_program"])
    assert list(back.uns["gv"]["gv_program"]["programs"]["P0"]) == list(adata.uns["gv"]["gv_program"]["programs"]["P0"])
    gv.tl.score_programs(back, progress=False, key_added="again")  # the reloaded programs work


def cell_reference(X: np.ndarray, vectors: np.ndarray, weighting: str) -> np.ndarray:
    usable = np.isfinite(vectors).all(axis=1)
    V = np.where(usable[:, None], vectors, 0.0)
    if weighting == "log1p":
        W = np.log1p(X)
    elif weighting == "raw":
        W = X
    else:
        idf = np.log(len(X) / (1.0 + (X > 0).sum(axis=0)))
        W = X / X.sum(axis=1, keepdims=True) * idf
    E = W @ V
    return E / np.linalg.norm(E, axis=1, keepdims=True)


@pytest.mark.parametrize("weighting", ["log1p", "raw", "tfidf"])
def test_cell_embed_matches_the_formula(weighting):
    adata = two_programs()
    X = adata.X.toarray()
    gv.tl.cell_embed(adata, weighting=weighting, chunk_size=7, progress=False)
    np.testing.assert_allclose(
        adata.obsm["X_gv_cells"], cell_reference(X, adata.varm["X_gv"].astype(float), weighting), atol=1e-5
    )
    assert adata.uns["gv"]["X_gv_cells"]["n_genes_used"] == 30


def test_planted_cell_types_separate_and_work_with_scanpy():
    data = gv.datasets.synthetic(600, 100, 2, seed=0, genes_per_program=30, mean_counts=0.3)
    gv.tl.coexpression(data, layer="counts", target_kwargs={"include_double_zeros": True}, progress=False)
    gv.tl.embed(data, progress=False)
    gv.tl.cell_embed(data, layer="counts", progress=False)
    from sklearn.cluster import KMeans

    labels = KMeans(2, n_init=10, random_state=0).fit_predict(data.obsm["X_gv_cells"])
    assert adjusted_rand_score(data.obs["cell_type"], labels) > 0.9
    sc.pp.neighbors(data, use_rep="X_gv_cells", n_neighbors=10)
    graph = data.obsp["distances"].tocoo()
    types = data.obs["cell_type"].to_numpy()
    assert (types[graph.row] == types[graph.col]).mean() > 0.9  # neighbours share the planted type


def test_cell_map_shows_planted_types_apart_and_writes_nothing():
    from sklearn.neighbors import NearestNeighbors

    data = gv.datasets.synthetic(600, 100, 2, seed=0, genes_per_program=30, mean_counts=0.3)
    data.varm["X_gv"] = np.zeros((data.n_vars, 2))  # program genes point one way each: a known answer
    data.varm["X_gv"][data.var["program"] == "P0", 0] = 1.0
    data.varm["X_gv"][data.var["program"] == "P1", 1] = 1.0
    gv.tl.cell_embed(data, layer="counts", progress=False)
    before = (set(data.obsm), set(data.obsp), set(data.uns))
    ax = gv.pl.cell_map(data, color="cell_type", max_cells=400, seed=0, show=False)
    points = [c.get_offsets() for c in ax.collections]
    assert sum(len(p) for p in points) == 400 and "400 of 600 cells" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == sorted(data.obs["cell_type"].unique())
    labels = np.concatenate([np.full(len(p), i) for i, p in enumerate(points)])
    _, near = NearestNeighbors(n_neighbors=11).fit(np.vstack(points)).kneighbors(np.vstack(points))
    assert (labels[near[:, 1:]] == labels[:, None]).mean() > 0.9  # neighbours on the map share the planted type
    data.obs["score"] = data.obsm["X_gv_cells"][:, 0]
    ax = gv.pl.cell_map(data, color="score", method="tsne", show=False)  # numbers: a colour bar
    assert len(ax.figure.axes) == 2 and ax.figure.axes[1].get_ylabel() == "score"
    assert (set(data.obsm), set(data.obsp), set(data.uns)) == before
    plt.close("all")
    for kwargs, error, match in [
        ({"color": "nothing"}, KeyError, "not an obs column"),
        ({"method": "pca"}, ValueError, "Unknown method"),
        ({"max_cells": 0}, ValueError, "max_cells"),
        ({"vectors_key": "X_none"}, KeyError, "cell_embed"),
    ]:
        with pytest.raises(error, match=match):
            gv.pl.cell_map(data, show=False, **kwargs)


def test_cells_without_embedded_genes_get_zeros_with_warning():
    adata = two_programs()
    adata.X = sp.csr_matrix(np.vstack([np.zeros((1, adata.n_vars)), adata.X.toarray()[1:]]))
    with pytest.warns(UserWarning, match="1 cells express none") as caught:
        gv.tl.cell_embed(adata, progress=False)
    assert caught[0].filename == __file__  # the warning points at the caller's line
    assert not adata.obsm["X_gv_cells"][0].any() and np.isfinite(adata.obsm["X_gv_cells"]).all()


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda a: gv.tl.programs(a, method="louvain"), ValueError, "Unknown method"),
        (lambda a: gv.tl.programs(a, method="kmeans"), ValueError, "n_clusters"),
        (lambda a: gv.tl.programs(a, resolution=0), ValueError, "resolution"),
        (lambda a: gv.tl.programs(a, vectors_key="X_none"), KeyError, "varm"),
        (lambda a: gv.tl.score_programs(a, progress=False), KeyError, "No programs"),
        (lambda a: gv.tl.score_programs(a, {"p": ["nope"]}, progress=False), KeyError, "nope"),
        (lambda a: gv.tl.score_programs(a, {"p": []}, progress=False), ValueError, "no genes"),
        (lambda a: gv.tl.cell_embed(a, weighting="sqrt", progress=False), ValueError, "weighting"),
        (lambda a: gv.tl.cell_embed(a, method="bogus", progress=False), ValueError, "weighted"),
        (lambda a: gv.tl.cell_embed(a, layer="none", progress=False), KeyError, "Layer"),
    ],
)
def test_bad_input(call, error, message):
    adata = two_programs()
    with pytest.raises(error, match=message):
        call(adata)
    assert "gv_program" not in adata.var and not adata.obsm


def test_negative_expression_needs_raw_weighting():
    adata = two_programs()
    adata.X = adata.X.toarray() - 1
    with pytest.raises(ValueError, match="negative"):
        gv.tl.cell_embed(adata, progress=False)
    gv.tl.cell_embed(adata, weighting="raw", progress=False)


def test_plots_produce_images(tmp_path):
    data = gv.datasets.synthetic(400, 40, 2, seed=0, genes_per_program=10, spatial=True)
    gv.tl.coexpression(data, layer="counts", progress=False)
    gv.tl.embed(data, n_components=10, progress=False)
    gv.tl.programs(data, method="kmeans", n_clusters=3)
    gv.tl.score_programs(data, progress=False)
    gv.tl.cell_embed(data, layer="counts", progress=False)
    sc.pp.neighbors(data, use_rep="X_gv_cells", n_neighbors=10)
    sc.tl.umap(data, random_state=0)
    outputs = {
        "map": gv.pl.gene_map(data, show=False, save=tmp_path / "map.png"),
        "tsne": gv.pl.gene_map(data, method="tsne", label=["gene00001"], show=False, save=tmp_path / "tsne.png"),
        "heat": gv.pl.similarity_heatmap(data, programs=["P0", "P1"], show=False, save=tmp_path / "heat.png"),
        "scores": gv.pl.programs(data, show=False, save=tmp_path / "scores.png"),
    }
    for name, result in outputs.items():
        image = plt.imread(tmp_path / f"{name}.png")
        assert result is not None and image[..., :3].std() > 0.05, name
    assert outputs["scores"].shape[0] == 2  # UMAP row and tissue row
    plt.close("all")
    with pytest.raises(KeyError, match="score_programs"):
        gv.pl.programs(data, scores_key="none")


def test_mudata_for_programs_scores_and_cells():
    mudata = pytest.importorskip("mudata")
    rna = two_programs()
    mdata = mudata.MuData({"rna": rna})
    gv.tl.programs(mdata, method="kmeans", n_clusters=2, mod="rna")
    gv.tl.score_programs(mdata, mod="rna", ctrl_size=2, n_bins=2, progress=False)
    gv.tl.cell_embed(mdata, mod="rna", progress=False)
    assert "gv_program" in mdata["rna"].var and "gv_programs" in mdata["rna"].obsm and "X_gv_cells" in mdata["rna"].obsm
    with pytest.raises(ValueError, match="mod="):
        gv.tl.cell_embed(mdata, progress=False)


@pytest.mark.parametrize("progress", [True, False])
def test_programs_and_gene_map_progress_bars(progress, capsys):
    # the kNN graph's blocks and UMAP's epochs show a bar unless turned off; the answer does not change
    adata = two_programs()
    gv.tl.programs(adata, progress=progress)
    assert ("programs" in capsys.readouterr().err) is progress
    reference = two_programs()
    gv.tl.programs(reference, progress=not progress)
    assert adata.var["gv_program"].equals(reference.var["gv_program"])
    ax = gv.pl.gene_map(adata, show=False, progress=progress)
    plt.close(ax.figure)
    assert ("UMAP epochs" in capsys.readouterr().err) is progress
