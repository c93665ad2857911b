"""The AnnData side of gv.tl.coexpression: keys, copies, layers, subsets, inputs, round trips."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import geneverse as gv


def test_defaults_write_varp_and_uns(adata):
    assert gv.tl.coexpression(adata, progress=False) is None
    assert adata.varp["gv_mi"].shape == (adata.n_vars, adata.n_vars)
    assert adata.varp["gv_mi"].dtype == np.float32
    record = adata.uns["gv"]["gv_mi"]
    assert record["target"] == "mi" and record["kind"] == "coexpression"
    assert record["params"]["signed"] is True and record["params"]["n_bins"] == 10
    assert list(record["genes"]) == list(adata.var_names)
    assert record["n_cells"] == adata.n_obs


def test_copy_leaves_input_untouched(adata):
    before = adata.X.copy()
    out = gv.tl.coexpression(adata, "pearson", key_added="corr", copy=True, progress=False)
    assert "corr" in out.varp and "corr" not in adata.varp and "gv" not in adata.uns
    assert (adata.X != before).nnz == 0


def test_layer_and_x_are_not_modified(adata):
    adata.X = sp.csr_matrix(np.log1p(adata.layers["counts"].toarray()))
    x_before, counts_before = adata.X.copy(), adata.layers["counts"].copy()
    gv.tl.coexpression(adata, layer="counts", key_added="mi_counts", signed_mi=False, progress=False)
    gv.tl.coexpression(adata, key_added="mi_log", signed_mi=False, progress=False)
    assert (adata.X != x_before).nnz == 0 and (adata.layers["counts"] != counts_before).nnz == 0
    # unsigned MI is invariant to a monotone transform of each gene: same bins
    np.testing.assert_allclose(adata.varp["mi_counts"], adata.varp["mi_log"], atol=1e-5)
    assert adata.uns["gv"]["mi_counts"]["layer"] == "counts"


@pytest.mark.parametrize("selection", ["column", "list", "mask"])
def test_gene_subset_is_stored_as_a_block(adata, selection):
    chosen = adata.var_names[adata.var["highly_variable"]]
    genes = {"column": "highly_variable", "list": list(chosen[::-1]), "mask": adata.var["highly_variable"].to_numpy()}
    gv.tl.coexpression(adata, "pearson", genes=genes[selection], progress=False)
    stored = adata.varp["gv_pearson"]
    assert sp.issparse(stored) and stored.shape == (adata.n_vars, adata.n_vars)
    frame = gv.io.coexpression_frame(adata, "gv_pearson")
    assert list(frame.index) == list(chosen)
    expected = np.corrcoef(adata[:, chosen].X.toarray().T)
    np.testing.assert_allclose(frame.to_numpy(), expected, atol=1e-6)
    outside = ~adata.var["highly_variable"].to_numpy()
    assert stored[outside].nnz == 0


def _formats(adata, tmp_path):
    import dask.array as da

    dense = adata.X.toarray()
    yield "dense", dense
    yield "csc", sp.csc_matrix(adata.X)
    yield "int", dense.astype(np.int64)
    yield "float16", dense.astype(np.float16)
    yield "dask_dense", da.from_array(dense, chunks=(40, -1))
    yield "dask_sparse", da.from_array(sp.csr_matrix(adata.X), chunks=(50, -1))


@pytest.mark.parametrize("target", ["mi", "pearson", "spearman"])
def test_every_input_format_gives_the_same_matrix(adata, tmp_path, target):
    gv.tl.coexpression(adata, target, key_added="ref", progress=False, use_cache=False)
    reference = adata.varp["ref"]
    for name, matrix in _formats(adata, tmp_path):
        other = ad.AnnData(X=matrix, var=adata.var.copy())
        gv.tl.coexpression(other, target, key_added="x", chunk_size=37, progress=False, use_cache=False)
        np.testing.assert_allclose(other.varp["x"], reference, atol=1e-5, err_msg=name)


def test_backed_anndata(adata, tmp_path):
    path = tmp_path / "backed.h5ad"
    adata.write_h5ad(path)
    gv.tl.coexpression(adata, progress=False, use_cache=False)
    backed = ad.read_h5ad(path, backed="r")
    gv.tl.coexpression(backed, chunk_size=33, progress=False, use_cache=False)
    np.testing.assert_allclose(backed.varp["gv_mi"], adata.varp["gv_mi"], atol=1e-6)
    assert backed.uns["gv"]["gv_mi"]["backed"] is True
    with pytest.raises(ValueError, match="backed"):
        gv.tl.coexpression(backed, copy=True, progress=False)
    backed.file.close()


def test_h5ad_round_trip(adata, tmp_path):
    gv.tl.coexpression(adata, progress=False)
    gv.tl.coexpression(adata, "jaccard", genes="highly_variable", progress=False)
    path = tmp_path / "round.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    for key in ("gv_mi", "gv_jaccard"):
        np.testing.assert_array_equal(
            gv.io.coexpression_frame(back, key).to_numpy(), gv.io.coexpression_frame(adata, key).to_numpy()
        )
        assert back.uns["gv"][key]["target"] == adata.uns["gv"][key]["target"]
    assert back.uns["gv"]["gv_mi"]["params"]["block_size"] == "None"
    # the reloaded object works in the next step
    assert gv.io.top_pairs(back, "gv_mi", n=3).shape == (3, 3)


def test_mudata_modality(adata):
    mudata = pytest.importorskip("mudata")
    mdata = mudata.MuData({"rna": adata.copy()})
    with pytest.raises(ValueError, match="mod="):
        gv.tl.coexpression(mdata, progress=False)
    gv.tl.coexpression(mdata, "pearson", mod="rna", progress=False)
    assert "gv_pearson" in mdata["rna"].varp
    out = gv.tl.coexpression(mdata, "cosine", mod="rna", copy=True, progress=False)
    assert "gv_cosine" in out["rna"].varp and "gv_cosine" not in mdata["rna"].varp
    assert gv.io.coexpression_frame(mdata, "gv_pearson", mod="rna").shape == (adata.n_vars, adata.n_vars)


def test_top_pairs_and_table(adata, tmp_path):
    gv.tl.coexpression(adata, "pearson", progress=False)
    pairs = gv.io.top_pairs(adata, "gv_pearson", n=5)
    corr = np.corrcoef(adata.X.toarray().T)
    upper = np.abs(corr[np.triu_indices(adata.n_vars, 1)])
    np.testing.assert_allclose(np.abs(pairs.score), np.sort(upper)[::-1][:5], atol=1e-6)
    path = gv.io.write_coexpression(adata, tmp_path / "m.tsv", "gv_pearson")
    import pandas as pd

    table = pd.read_csv(path, sep="\t", index_col=0)
    np.testing.assert_allclose(table.to_numpy(), corr, atol=1e-5)


def _planted_matrix(seed: int = 0, n_cells: int = 300, n_genes: int = 60):
    adata = gv.datasets.synthetic(n_cells, n_genes, 3, seed=seed)
    gv.tl.coexpression(adata, "pearson", layer="counts", progress=False, use_cache=False)
    return adata


def test_compact_coexpression_top_k_keeps_each_genes_strongest_partners(tmp_path):
    adata = _planted_matrix()
    full = np.asarray(adata.varp["gv_pearson"], dtype=np.float32).copy()
    strongest = gv.io.top_pairs(adata, "gv_pearson", n=30)
    gv.io.compact_coexpression(adata, "gv_pearson", top_k=5)
    compact = adata.varp["gv_pearson"]
    assert sp.issparse(compact) and compact.dtype == np.float32
    assert (compact != compact.T).nnz == 0  # symmetric
    dense = compact.toarray()
    np.testing.assert_array_equal(np.diag(dense), np.diag(full))
    n = len(full)
    for gene in range(n):
        off = np.abs(full[gene]).copy()
        off[gene] = -1
        kept = set(np.flatnonzero(dense[gene])) - {gene}
        assert set(np.argsort(-off, kind="stable")[:5]) <= kept | set(np.flatnonzero(off == np.sort(off)[-5]))
        np.testing.assert_array_equal(dense[gene, sorted(kept)], full[gene, sorted(kept)])  # values as they were
    assert compact.nnz <= n * (2 * 5 + 1)
    record = adata.uns["gv"]["gv_pearson"]
    assert record["storage"] == "top_k" and record["top_k"] == 5 and record["kind"] == "coexpression"
    # the strongest pairs survive, in order; the file is a fraction of the dense one
    pd.testing.assert_frame_equal(gv.io.top_pairs(adata, "gv_pearson", n=30), strongest)
    adata.write_h5ad(tmp_path / "compact.h5ad")
    back = ad.read_h5ad(tmp_path / "compact.h5ad")
    assert back.uns["gv"]["gv_pearson"]["storage"] == "top_k"
    np.testing.assert_array_equal(back.varp["gv_pearson"].toarray(), dense)
    # training on it is refused, with the fix; nothing changes
    with pytest.raises(ValueError, match=r"strongest partners.*Recompute the full matrix"):
        gv.tl.embed(back, "gv_pearson", n_components=4, epochs=3, progress=False)
    assert "X_gv" not in back.varm
    with pytest.raises(ValueError, match="already keeps only"):
        gv.io.compact_coexpression(back, "gv_pearson", top_k=3)


def test_compact_coexpression_float16_halves_the_matrix_and_still_trains(tmp_path):
    adata = _planted_matrix()
    full = np.asarray(adata.varp["gv_pearson"]).copy()
    copy = gv.io.compact_coexpression(adata, "gv_pearson", copy=True)
    assert adata.varp["gv_pearson"].dtype == full.dtype  # copy=True leaves the original alone
    half = copy.varp["gv_pearson"]
    assert half.dtype == np.float16 and half.nbytes * 2 == full.astype(np.float32).nbytes
    np.testing.assert_allclose(half.astype(np.float32), full, rtol=1e-3, atol=1e-4)
    assert copy.uns["gv"]["gv_pearson"]["storage"] == "float16"
    gv.tl.embed(copy, "gv_pearson", n_components=4, epochs=3, progress=False)
    assert np.isfinite(copy.varm["X_gv"]).all()


@pytest.mark.parametrize(("top_k", "error", "message"), [(0, ValueError, "top_k"), (2.5, ValueError, "top_k")])
def test_compact_coexpression_rejects_bad_input(top_k, error, message):
    adata = _planted_matrix()
    before = np.asarray(adata.varp["gv_pearson"]).copy()
    with pytest.raises(error, match=message):
        gv.io.compact_coexpression(adata, "gv_pearson", top_k=top_k)
    adata.varp["gv_pearson"] = before * 1e6  # beyond float16
    with pytest.raises(ValueError, match=r"beyond float16.*top_k="):
        gv.io.compact_coexpression(adata, "gv_pearson")
    assert adata.varp["gv_pearson"].dtype == before.dtype and "storage" not in adata.uns["gv"]["gv_pearson"]
    with pytest.raises(KeyError, match="No co-expression matrix"):
        gv.io.compact_coexpression(adata, "gv_nope")


def test_compact_coexpression_keeps_a_reordered_matrix_in_place_and_refuses_nan():
    adata = _planted_matrix()
    permuted = adata[:, np.random.default_rng(0).permutation(adata.n_vars)].copy()
    before = gv.get.coexpression(permuted, "gv_pearson")
    half = gv.io.compact_coexpression(permuted, "gv_pearson", copy=True)
    after = gv.get.coexpression(half, "gv_pearson")
    np.testing.assert_allclose(after.to_numpy(), before.to_numpy(), atol=1e-3)  # same genes, same values
    assert "top_k" not in half.uns["gv"]["gv_pearson"]
    top = gv.io.compact_coexpression(permuted, "gv_pearson", top_k=4, copy=True)
    kept = gv.get.coexpression(top, "gv_pearson").to_numpy()
    np.testing.assert_array_equal(kept[kept != 0], before.to_numpy()[kept != 0].astype(np.float32))
    identity = _planted_matrix()
    identity.varp["gv_pearson"] = np.eye(identity.n_vars, dtype=np.float32)
    gv.io.compact_coexpression(identity, "gv_pearson", top_k=5)
    assert identity.varp["gv_pearson"].nnz == identity.n_vars  # zeros are not stored
    sparse = _planted_matrix()
    sparse.varp["gv_pearson"] = sp.csr_matrix(np.eye(sparse.n_vars, dtype=np.float32))  # put in by hand
    with pytest.raises(ValueError, match="sparse already"):
        gv.io.compact_coexpression(sparse, "gv_pearson")
    gv.io.compact_coexpression(sparse, "gv_pearson", top_k=2)  # top-k reads a sparse matrix
    assert sparse.varp["gv_pearson"].nnz == sparse.n_vars
    broken = _planted_matrix()
    broken.varp["gv_pearson"][0, 1] = np.nan
    for top_k in (None, 3):
        with pytest.raises(ValueError, match="NaN or infinite"):
            gv.io.compact_coexpression(broken, "gv_pearson", top_k=top_k)
    assert broken.varp["gv_pearson"].dtype == np.float32 and "storage" not in broken.uns["gv"]["gv_pearson"]
