"""graph_xcorr: exact against a dense reference, planted neighbour effects, graph checks, scirpy and squidpy."""

from __future__ import annotations

import importlib.resources
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData
from scipy.sparse.csgraph import connected_components

import geneverse as gv


def random_graph(n_cells: int, seed: int, isolated: int | None = None) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_cells, n_cells)) < 0.08) * rng.uniform(0.5, 2.0, size=(n_cells, n_cells))
    np.fill_diagonal(dense, 3.0)  # self-loops must be ignored
    if isolated is not None:
        dense[isolated] = 0
    return sp.csr_matrix(dense)


def reference(X: np.ndarray, graph: np.ndarray, aggr: str, include_self: bool, symmetrize: bool) -> np.ndarray:
    """Direct dense computation: neighbour aggregates, then corrcoef of [own, around] over non-isolated cells."""
    weights = graph.copy()
    np.fill_diagonal(weights, 1.0 if include_self else 0.0)
    degree = weights.sum(axis=1)
    keep = degree > 0
    around = weights @ X
    if aggr == "mean":
        around = around / np.where(keep, degree, 1.0)[:, None]
    n_genes = X.shape[1]
    joint = np.corrcoef(np.hstack([X[keep], around[keep]]).T)
    cross = joint[:n_genes, n_genes:]
    return (cross + cross.T) / 2 if symmetrize else cross


@pytest.mark.parametrize("aggr", ["mean", "sum"])
@pytest.mark.parametrize(("include_self", "symmetrize"), [(False, True), (True, False)])
def test_equals_dense_reference(aggr, include_self, symmetrize):
    rng = np.random.default_rng(0)
    X = rng.poisson(1.0, size=(90, 7)).astype(float) * (rng.random((90, 7)) < 0.7)
    graph = random_graph(90, 1, isolated=4)
    adata = AnnData(X=sp.csr_matrix(X))
    adata.obsp["g"] = graph
    kwargs = {"graph": "g", "aggr": aggr, "include_self": include_self, "symmetrize": symmetrize}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gv.tl.coexpression(adata, "graph_xcorr", target_kwargs=kwargs, chunk_size=17, progress=False)
    expected = reference(X, graph.toarray(), aggr, include_self, symmetrize)
    np.testing.assert_allclose(adata.varp["gv_graph_xcorr"], expected, atol=1e-5)
    assert adata.uns["gv"]["gv_graph_xcorr"]["params"]["graph"] == "g"


def test_matrix_graph_and_isolated_cells_warn():
    X = np.random.default_rng(1).poisson(2.0, size=(40, 5)).astype(float)
    graph = random_graph(40, 2, isolated=0)
    adata = AnnData(X=X)
    with pytest.warns(UserWarning, match="of 40 cells have no neighbour"):
        gv.tl.coexpression(adata, "graph_xcorr", target_kwargs={"graph": graph}, progress=False)
    assert adata.uns["gv"]["gv_graph_xcorr"]["params"]["graph"] == "matrix 40 x 40"
    np.testing.assert_allclose(
        adata.varp["gv_graph_xcorr"], reference(X, graph.toarray(), "mean", False, True), atol=1e-5
    )


@pytest.mark.parametrize(
    ("graph", "error", "message"),
    [
        ("missing", KeyError, "spatial_neighbors"),
        (sp.random(5, 5, density=0.5, format="csr"), ValueError, "cells x cells"),
        (sp.csr_matrix(np.full((30, 30), np.nan)), ValueError, "NaN"),
        (sp.csr_matrix(-np.ones((30, 30))), ValueError, "negative"),
        (sp.identity(30, format="csr"), ValueError, "isolated"),
        ([[1, 0], [0, 1]], TypeError, "scipy sparse or numpy"),
    ],
)
def test_bad_graphs(adata, graph, error, message):
    adata = adata[:30].copy()
    with pytest.raises(error, match=message):
        gv.tl.coexpression(adata, "graph_xcorr", target_kwargs={"graph": graph}, progress=False)
    assert "gv_graph_xcorr" not in adata.varp


def test_planted_neighbour_effect_with_squidpy():
    pytest.importorskip("squidpy")
    data = gv.datasets.synthetic(1500, 60, 3, seed=0, spatial=True, neighbor_effect=True)
    source, target = data.uns["synthetic"]["neighbor_effect"]
    assert data.var.loc[[source, target], "neighbor_effect"].tolist() == ["source", "target"]
    gv.graphs.spatial_graph(data, coord_type="generic", n_neighs=6)
    gv.tl.coexpression(data, "graph_xcorr", layer="counts", progress=False)
    gv.tl.coexpression(data, "pearson", layer="counts", progress=False)
    top = gv.io.top_pairs(data, "gv_graph_xcorr", n=1)
    assert {top.gene_a[0], top.gene_b[0]} == {source, target}
    pearson = gv.io.top_pairs(data, "gv_pearson", n=50)
    assert not any({a, b} == {source, target} for a, b in zip(pearson.gene_a, pearson.gene_b, strict=True))


def test_neighbor_effect_needs_space():
    with pytest.raises(ValueError, match="spatial=True"):
        gv.datasets.synthetic(100, 30, 2, neighbor_effect=True)


def test_clonotype_graph_from_a_column():
    adata = AnnData(X=np.ones((6, 2)))
    adata.obs["clone"] = ["a", "a", "a", "b", None, "c"]
    gv.graphs.build_clonotype_graph(adata, "clone")
    graph = adata.obsp["clonotype_connectivities"].toarray()
    np.testing.assert_allclose(graph[:3, :3], (np.ones((3, 3)) - np.eye(3)) / 2)  # one clone: all connected
    assert not graph[3:].any() and not graph[:, 3:].any()  # singletons and cells without a clone: isolated
    assert adata.uns["gv"]["clonotype"]["n_connected_cells"] == 3
    with pytest.raises(KeyError, match="define_clonotypes"):
        gv.graphs.build_clonotype_graph(adata, "clone_id")


@pytest.fixture(scope="module")
def wu2020():
    """scirpy's bundled Wu et al. 2020 subset (gex + airr MuData) with clonotype clusters."""
    ir = pytest.importorskip("scirpy")
    mudata = pytest.importorskip("mudata")
    path = importlib.resources.files("scirpy") / "tests" / "data" / "wu2020_200.h5mu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = mudata.read_h5mu(path)
        ir.pp.index_chains(mdata)
        ir.tl.chain_qc(mdata)
        ir.pp.ir_dist(mdata, metric="levenshtein", sequence="aa", cutoff=3)
        ir.tl.define_clonotype_clusters(
            mdata, sequence="aa", metric="levenshtein", receptor_arms="any", dual_ir="any", key_added="cc"
        )
    return mdata


def test_scirpy_clonotype_clusters_to_graph_xcorr(wu2020):
    mdata = wu2020.copy()
    # on the airr modality (every cell with a receptor): a cluster is a connected component of
    # scirpy's receptor distances, so its cells form one component, each with total weight 1
    gv.graphs.build_clonotype_graph(mdata, "cc", mod="airr")
    airr = mdata["airr"]
    graph = airr.obsp["clonotype_connectivities"]
    assert mdata["airr"].uns["gv"]["clonotype"]["source"] == "scirpy distances"
    clusters = airr.obs["cc"]
    members = np.flatnonzero((clusters == clusters.value_counts().index[0]).to_numpy())
    assert len(members) > 2
    n_components, _ = connected_components(graph[members][:, members], directed=False)
    assert n_components == 1
    assert graph[members].sum() == pytest.approx(len(members))
    # on the expression modality (a different subset of cells), then graph_xcorr there
    gv.graphs.build_clonotype_graph(mdata, "cc", mod="gex")
    gex = mdata["gex"]
    assert gex.obsp["clonotype_connectivities"].shape == (gex.n_obs, gex.n_obs)
    genes = gex.var_names[np.asarray((gex.X > 0).sum(axis=0)).ravel() >= 20][:40]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # many cells are their own cluster: isolated
        gv.tl.coexpression(
            mdata, "graph_xcorr", mod="gex", genes=list(genes), target_kwargs={"graph": "clonotype_connectivities"},
            progress=False,
        )  # fmt: skip
    frame = gv.io.coexpression_frame(mdata, "gv_graph_xcorr", mod="gex")
    assert frame.shape == (len(genes), len(genes)) and np.isfinite(frame.to_numpy()).all()
    np.testing.assert_allclose(frame.to_numpy(), frame.to_numpy().T)  # symmetrised by default


def test_scirpy_anndata_layout_end_to_end():
    ir = pytest.importorskip("scirpy")
    import anndata as ad

    path = importlib.resources.files("scirpy") / "tests" / "data" / "wu2020_200_v0_11.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = ad.read_h5ad(path)
        ir.io.upgrade_schema(adata)  # the file predates obsm['airr']
        ir.pp.index_chains(adata)
        ir.tl.chain_qc(adata)
        ir.pp.ir_dist(adata, metric="levenshtein", sequence="aa", cutoff=3)
        ir.tl.define_clonotype_clusters(
            adata, sequence="aa", metric="levenshtein", receptor_arms="any", dual_ir="any", key_added="cc"
        )
    assert "airr" in adata.obsm
    gv.graphs.build_clonotype_graph(adata, "cc")
    graph = adata.obsp["clonotype_connectivities"]
    assert graph.shape == (adata.n_obs, adata.n_obs) and graph.nnz > 0
    genes = adata.var_names[np.asarray((adata.X > 0).sum(axis=0)).ravel() >= 30][:30]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gv.tl.coexpression(
            adata, "graph_xcorr", genes=list(genes), target_kwargs={"graph": "clonotype_connectivities"}, progress=False
        )
    assert np.isfinite(gv.io.coexpression_frame(adata, "gv_graph_xcorr").to_numpy()).all()
