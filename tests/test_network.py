"""gv.tl.gene_network, gv.io.write_network, gv.pl.gene_network: against brute force, exported and read back."""

from __future__ import annotations

import anndata as ad
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import geneverse as gv


@pytest.fixture
def genes() -> ad.AnnData:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 6))
    vectors[:10] += 4 * rng.normal(size=6)  # a tight group of ten
    vectors[7] = 0.0  # a gene without a vector
    adata = ad.AnnData(X=np.zeros((3, 40), dtype=np.float32))
    adata.var_names = [f"g{i}" for i in range(40)]
    adata.varm["X_gv"] = vectors
    adata.var["gv_program"] = pd.Categorical(np.where(np.arange(40) < 10, "P0", "P1"))
    adata.var["symbol"] = [f"S{i}" for i in range(40)]
    return adata


def cosines(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1)
    return unit @ unit.T


def test_neighbours_match_brute_force(genes):
    gv.tl.gene_network(genes, n_neighbors=4)
    graph = genes.varp["gv_network_connectivities"]
    assert sp.issparse(graph) and graph.dtype == np.float32
    assert (graph != graph.T).nnz == 0 and graph.diagonal().sum() == 0
    similarity = cosines(genes.varm["X_gv"])
    np.fill_diagonal(similarity, -np.inf)
    similarity[:, 7] = -np.inf
    dense = graph.toarray()
    for gene in set(range(40)) - {7}:
        nearest = np.argsort(-similarity[gene])[:4]
        nearest = nearest[similarity[gene, nearest] > 0]
        assert np.all(dense[gene, nearest] > 0), gene
        np.testing.assert_allclose(dense[gene, nearest], similarity[gene, nearest], rtol=1e-5)
    assert dense[7].sum() == 0 and dense[:, 7].sum() == 0  # no vector, no edge
    record = genes.uns["gv"]["gv_network"]
    assert record["n_edges"] == graph.nnz // 2 and record["n_isolated"] == 1


def test_threshold_matches_brute_force(genes):
    gv.tl.gene_network(genes, threshold=0.6, key_added="strong")
    dense = genes.varp["strong_connectivities"].toarray()
    similarity = cosines(genes.varm["X_gv"])
    np.fill_diagonal(similarity, 0)
    expected = np.where(similarity >= 0.6, similarity, 0)
    np.testing.assert_allclose(dense, expected, rtol=1e-5, atol=1e-7)
    assert genes.uns["gv"]["strong"]["params"]["threshold"] == 0.6
    with pytest.raises(ValueError, match="raise the threshold"):
        gv.tl.gene_network(genes, threshold=0.01, max_edges=5)
    assert "gv_network" not in genes.uns["gv"]  # the failed call wrote nothing


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_neighbors": 3, "threshold": 0.5}, ValueError, "not both"),
        ({"threshold": 0.0}, ValueError, r"in \(0, 1\]"),
        ({"threshold": 1.5}, ValueError, r"in \(0, 1\]"),
        ({"n_neighbors": 0}, ValueError, "n_neighbors"),
        ({"vectors_key": "X_none"}, KeyError, "X_none"),
    ],
)
def test_bad_input(genes, kwargs, error, match):
    with pytest.raises(error, match=match):
        gv.tl.gene_network(genes, **kwargs)
    assert "gv_network_connectivities" not in genes.varp


def test_export_csv_and_graphml(genes, tmp_path):
    nx = pytest.importorskip("networkx")
    gv.tl.gene_network(genes, n_neighbors=3)
    edges = gv.io.network_edges(genes)
    assert list(edges.columns) == ["source", "target", "weight"] and edges["weight"].is_monotonic_decreasing
    assert len(edges) == genes.varp["gv_network_connectivities"].nnz // 2
    table = pd.read_csv(gv.io.write_network(genes, tmp_path / "edges.csv"))
    pd.testing.assert_frame_equal(table[["source", "target"]], edges[["source", "target"]])
    np.testing.assert_allclose(table["weight"], edges["weight"], rtol=1e-5)
    assert (table["source_gv_program"] == genes.var.loc[table["source"], "gv_program"].to_numpy()).all()
    graph = nx.read_graphml(gv.io.write_network(genes, tmp_path / "net.graphml"))
    assert graph.number_of_edges() == len(edges) and "g7" not in graph
    assert graph.nodes["g0"]["gv_program"] == "P0"
    first = edges.iloc[0]
    assert graph.edges[first["source"], first["target"]]["weight"] == pytest.approx(first["weight"], rel=1e-5)
    symbols = gv.io.network_edges(genes, gene_symbols="symbol")
    assert symbols["source"].str.startswith("S").all()
    tsv = gv.io.write_network(genes, tmp_path / "edges.out", format="tsv", attributes=None)
    assert pd.read_csv(tsv, sep="\t").shape == (len(edges), 3)
    compressed = pd.read_csv(gv.io.write_network(genes, tmp_path / "edges.csv.gz"))
    pd.testing.assert_frame_equal(compressed, table)
    with pytest.raises(ValueError, match=r"graphml, \.csv or \.tsv"):
        gv.io.write_network(genes, tmp_path / "edges.xlsx")
    with pytest.raises(KeyError, match="not var columns"):
        gv.io.write_network(genes, tmp_path / "e.csv", attributes=["nope"])
    with pytest.raises(KeyError, match="gene_network"):
        gv.io.write_network(genes, tmp_path / "e.csv", key="other")


def test_plot(genes, tmp_path):
    gv.tl.gene_network(genes, n_neighbors=3)
    ax = gv.pl.gene_network(genes, show=False, save=tmp_path / "net.png")
    assert (tmp_path / "net.png").stat().st_size > 0
    assert ax.get_title().startswith("gv_network: 39 genes")
    assert len(ax.collections[0].get_segments()) == genes.uns["gv"]["gv_network"]["n_edges"]
    plt.close("all")
    ax = gv.pl.gene_network(genes, genes=[f"g{i}" for i in range(10)], layout="umap", show=False)
    assert ax.get_title().startswith("gv_network: 10 genes") and len(ax.texts) == 10
    plt.close("all")
    with pytest.raises(KeyError, match="not in the data"):
        gv.pl.gene_network(genes, genes=["nope"], show=False)
    with pytest.raises(ValueError, match="layout"):
        gv.pl.gene_network(genes, layout="circle", show=False)


def test_export_keeps_missing_values_and_refuses_repeated_names(genes, tmp_path):
    nx = pytest.importorskip("networkx")
    gv.tl.gene_network(genes, n_neighbors=3)
    genes.var["note"] = pd.Series(["kinase"] * 40, index=genes.var_names, dtype=object)
    genes.var.loc["g0", "note"] = None
    graph = nx.read_graphml(gv.io.write_network(genes, tmp_path / "net.graphml", attributes=["note", "gv_program"]))
    assert "note" not in graph.nodes["g0"] and graph.nodes["g1"]["note"] == "kinase"
    table = pd.read_csv(gv.io.write_network(genes, tmp_path / "e.csv", attributes=["note"]))
    assert table.loc[table["source"] == "g0", "source_note"].isna().all()
    genes.var["symbol"] = ["S0", "S0"] + [f"S{i}" for i in range(2, 40)]
    with pytest.raises(ValueError, match=r"\['S0'\] occur more than once"):
        gv.io.write_network(genes, tmp_path / "dup.csv", gene_symbols="symbol")
    assert not (tmp_path / "dup.csv").exists()


def test_defaults_follow_programs(genes):
    gv.tl.gene_network(genes)
    assert genes.uns["gv"]["gv_network"]["params"]["n_neighbors"] == 15  # as gv.tl.programs
    del genes.var["gv_program"]
    ax = gv.pl.gene_network(genes, show=False)  # no programs: one colour, no error
    assert ax.get_legend() is None
    plt.close("all")
