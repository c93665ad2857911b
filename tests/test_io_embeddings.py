"""Import/export of gene embeddings in every format, alignment and errors."""

from __future__ import annotations

import pickle

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

import geneverse as gv


@pytest.fixture
def embedded() -> AnnData:
    rng = np.random.default_rng(0)
    adata = AnnData(X=sp.csr_matrix((4, 6)))
    adata.var_names = ["CD3D", "CD3E", "MS4A1", "LYZ", "NKG7", "GNLY"]
    adata.var["ensembl"] = [f"ENSG{i:011d}" for i in range(6)]
    adata.varm["X_gv"] = rng.normal(size=(6, 5)).astype(np.float32)
    return adata


@pytest.mark.parametrize("suffix", [".txt", ".vec", ".pkl", ".csv", ".tsv", ".npy"])
def test_round_trip_every_format(embedded, tmp_path, suffix):
    path = gv.io.write_embeddings(embedded, tmp_path / f"emb{suffix}")
    fresh = embedded.copy()
    del fresh.varm["X_gv"]
    gv.io.read_embeddings(fresh, path, key_added="X_in", allow_pickle=suffix == ".pkl")
    np.testing.assert_allclose(fresh.varm["X_in"], embedded.varm["X_gv"], rtol=1e-6)
    assert fresh.uns["gv"]["X_in"]["n_missing"] == 0


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_table_gene_names_are_read_as_text(tmp_path, suffix):
    # "1" and "1 " are two genes; read as numbers they both became 1 (found by the fuzz test)
    adata = AnnData(X=sp.csr_matrix((2, 3)))
    adata.var_names = ["1", "1 ", "007"]
    adata.varm["X_gv"] = np.arange(9.0).reshape(3, 3)
    path = gv.io.write_embeddings(adata, tmp_path / f"numeric{suffix}")
    gv.io.read_embeddings(adata, path, key_added="back")
    np.testing.assert_array_equal(adata.varm["back"], adata.varm["X_gv"])


def test_missing_genes_become_nan_with_a_warning(embedded, tmp_path):
    path = tmp_path / "partial.txt"
    path.write_text("CD3D 1 0 0\nLYZ 0 1 0\nOTHER 0 0 1\n")  # no header, like some Gene2vec files
    with pytest.warns(UserWarning, match="4 of 6 genes have no vector"):
        gv.io.read_embeddings(embedded, path, key_added="X_w2v")
    vectors = embedded.varm["X_w2v"]
    np.testing.assert_array_equal(vectors[0], [1, 0, 0])
    assert np.isnan(vectors[[1, 2, 4, 5]]).all()
    assert sorted(embedded.uns["gv"]["X_w2v"]["missing_genes"]) == ["CD3E", "GNLY", "MS4A1", "NKG7"]
    assert gv.tl.similar(embedded, "CD3D", vectors_key="X_w2v", n=5).gene.tolist() == ["LYZ"]


def test_genept_pickle_mapping_case_and_gene_column(embedded, tmp_path):
    genept = {"cd3d": [1.0, 2.0], "lyz": [3.0, 4.0]}
    path = tmp_path / "genept.pickle"
    path.write_bytes(pickle.dumps(genept))
    with pytest.warns(UserWarning, match="no vector"):
        gv.io.read_embeddings(embedded, path, key_added="X_genept", case_sensitive=False, allow_pickle=True)
    np.testing.assert_array_equal(embedded.varm["X_genept"][3], [3, 4])
    frame = pd.DataFrame([[1.0, 1.0]] * 6, index=embedded.var["ensembl"])
    gv.io.read_embeddings(embedded, frame, key_added="X_ens", gene_column="ensembl")
    assert np.isfinite(embedded.varm["X_ens"]).all()


def test_npy_needs_gene_names(embedded, tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, np.ones((6, 2)))
    with pytest.raises(ValueError, match="gene names"):
        gv.io.read_embeddings(embedded, path)
    gv.io.read_embeddings(embedded, path, genes=list(embedded.var_names), key_added="X_npy")
    assert embedded.varm["X_npy"].shape == (6, 2)
    with pytest.raises(ValueError, match="3 gene names for 6 vectors"):
        gv.io.read_embeddings(embedded, path, genes=["a", "b", "c"])


@pytest.mark.parametrize(
    ("source", "kwargs", "error", "message"),
    [
        ({"CD3D": [1.0, np.nan]}, {}, ValueError, "NaN"),
        ({"CD3D": [1.0], "LYZ": [1.0, 2.0]}, {}, ValueError, "different lengths"),
        ({"FOO": [1.0]}, {}, ValueError, "None of the 1 embedded genes"),
        ("missing.txt", {}, FileNotFoundError, "No embedding file"),
        ({"CD3D": [1.0]}, {"gene_column": "nope"}, KeyError, "gene_column"),
    ],
)
def test_bad_sources(embedded, tmp_path, source, kwargs, error, message):
    if source == "missing.txt":
        source = tmp_path / source
    with pytest.raises(error, match=message):
        gv.io.read_embeddings(embedded, source, key_added="X_bad", **kwargs)
    assert "X_bad" not in embedded.varm


def test_unknown_suffix_and_format(embedded, tmp_path):
    path = tmp_path / "e.bin"
    path.write_text("x")
    with pytest.raises(ValueError, match="suffix"):
        gv.io.read_embeddings(embedded, path)
    with pytest.raises(ValueError, match="Unknown embedding format"):
        gv.io.write_embeddings(embedded, tmp_path / "e.txt", format="hdf5")
    with pytest.raises(KeyError, match="varm"):
        gv.io.write_embeddings(embedded, tmp_path / "e.txt", vectors_key="X_none")


def test_imported_vectors_survive_h5ad(embedded, tmp_path):
    with pytest.warns(UserWarning, match="no vector"):
        gv.io.read_embeddings(embedded, {"CD3D": [1.0, 0.0], "CD3E": [0.9, 0.1], "LYZ": [0.0, 1.0]}, key_added="X_imp")
    path = tmp_path / "imp.h5ad"
    embedded.write_h5ad(path)
    back = ad.read_h5ad(path)
    assert gv.tl.similar(back, "CD3D", vectors_key="X_imp", n=1).gene.tolist() == ["CD3E"]
