"""Bad input raises a clear error and leaves the AnnData as it was."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData

import geneverse as gv


def snapshot(adata: AnnData) -> dict:
    X = adata.X.toarray() if sp.issparse(adata.X) else np.array(adata.X)
    return {
        "X": X,
        "varp": set(adata.varp.keys()),
        "uns": copy.deepcopy(dict(adata.uns)),
        "layers": set(adata.layers.keys()),
    }


def assert_unchanged(adata: AnnData, before: dict) -> None:
    after = snapshot(adata)
    np.testing.assert_array_equal(after["X"], before["X"])
    assert after["varp"] == before["varp"] and after["layers"] == before["layers"]
    assert after["uns"].keys() == before["uns"].keys()


def dense(adata: AnnData) -> AnnData:
    adata.X = adata.X.toarray()
    return adata


@pytest.mark.parametrize(
    ("mutate", "call", "error", "message"),
    [
        (lambda a: dense(a).X.__setitem__((0, 0), np.nan), {}, ValueError, "NaN"),
        (lambda a: dense(a).X.__setitem__((3, 1), np.inf), {"target": "pearson"}, ValueError, "infinite"),
        (lambda a: dense(a).X.__setitem__((2, 2), -1.0), {}, ValueError, "negative"),
        (lambda a: dense(a).X.__setitem__((2, 2), -1.0), {"target": "jaccard"}, ValueError, "negative"),
        (lambda a: None, {"target": "nope"}, KeyError, "Unknown target"),
        (lambda a: None, {"layer": "missing"}, KeyError, "Layer 'missing'"),
        (lambda a: None, {"genes": ["g1", "BRCA1"]}, KeyError, "BRCA1"),
        (lambda a: None, {"genes": "not_a_column"}, KeyError, "not a column"),
        (lambda a: None, {"genes": []}, ValueError, "empty"),
        (lambda a: None, {"target_kwargs": {"bins": 3}}, ValueError, "Unknown target_kwargs"),
        (lambda a: None, {"target_kwargs": {"n_bins": 0}}, ValueError, "n_bins"),
        (lambda a: None, {"mi_backend": "gpu"}, ValueError, "mi_backend"),
        (lambda a: None, {"chunk_size": 0}, ValueError, "chunk_size"),
        (lambda a: None, {"key_added": ""}, ValueError, "key_added"),
        (lambda a: None, {"mod": "rna"}, ValueError, "MuData"),
    ],
)
def test_bad_input(adata, mutate, call, error, message):
    mutate(adata)
    before = snapshot(adata)
    with pytest.raises(error, match=message):
        gv.tl.coexpression(adata, progress=False, **call)
    assert_unchanged(adata, before)


def test_negative_values_are_fine_for_correlations(adata):
    adata.X = adata.X.toarray() - 1.0
    gv.tl.coexpression(adata, "pearson", progress=False)
    assert np.isfinite(adata.varp["gv_pearson"]).all()


def test_duplicate_var_names(adata):
    adata.var_names = ["g0"] * adata.n_vars
    with pytest.raises(ValueError, match="var_names_make_unique"):
        gv.tl.coexpression(adata, progress=False)
    assert not adata.varp


@pytest.mark.parametrize("shape", [(0, 5), (5, 0)])
def test_empty_matrix(shape):
    adata = AnnData(X=np.zeros(shape))
    with pytest.raises(ValueError, match="empty"):
        gv.tl.coexpression(adata, progress=False)


def test_not_an_anndata():
    with pytest.raises(TypeError, match="AnnData"):
        gv.tl.coexpression(np.zeros((3, 3)))


def test_all_zero_genes_give_zeros_not_nan(adata):
    adata.X = adata.X.toarray()
    adata.X[:, :2] = 0
    for target in ("mi", "jaccard", "cosine", "cooccurrence", "ppmi"):
        gv.tl.coexpression(adata, target, progress=False)
        values = adata.varp[f"gv_{target}"]
        assert np.isfinite(values).all() and not values[:2].any(), target


def test_a_failing_target_leaves_no_partial_output(adata):
    def broken(X, gene_names):
        raise RuntimeError("boom")

    before = snapshot(adata)
    with pytest.raises(RuntimeError, match="boom"):
        gv.tl.coexpression(adata, broken, progress=False)
    assert_unchanged(adata, before)
