"""Every built-in target against a direct reference, and custom targets."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData
from scipy.spatial.distance import cdist
from scipy.stats import spearmanr
from sklearn.metrics.pairwise import cosine_similarity

import geneverse as gv


def compute(adata, target, **kwargs):
    gv.tl.coexpression(adata, target, progress=False, use_cache=False, **kwargs)
    name = target if isinstance(target, str) else target.__name__
    return gv.io.coexpression_frame(adata, kwargs.get("key_added") or f"gv_{name}").to_numpy()


def test_pearson(adata, counts):
    np.testing.assert_allclose(compute(adata, "pearson"), np.corrcoef(counts.T), atol=1e-6)


def test_pearson_on_signed_data_with_chunks():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 7)) @ rng.normal(size=(7, 7))
    a = AnnData(X=X)
    np.testing.assert_allclose(compute(a, "pearson", chunk_size=13), np.corrcoef(X.T), atol=1e-6)


def test_spearman(adata, counts):
    np.testing.assert_allclose(compute(adata, "spearman", chunk_size=40), spearmanr(counts).statistic, atol=1e-6)


def test_spearman_with_negative_values():
    rng = np.random.default_rng(2)
    X = np.round(rng.normal(size=(80, 6)), 1) * (rng.random((80, 6)) < 0.5)
    np.testing.assert_allclose(compute(AnnData(X=sp.csr_matrix(X)), "spearman"), spearmanr(X).statistic, atol=1e-6)


def test_jaccard(adata, counts):
    detected = counts > 0
    expected = 1 - cdist(detected.T, detected.T, metric="jaccard")
    np.testing.assert_allclose(compute(adata, "jaccard"), expected, atol=1e-6)


def test_cosine(adata, counts):
    np.testing.assert_allclose(compute(adata, "cosine"), cosine_similarity(counts.T), atol=1e-6)


def test_cooccurrence_hand_computed():
    X = np.array([[2, 1, 0], [3, 0, 1], [0, 4, 1]], dtype=float)
    expected = X.T @ X
    # diagonal = within-cell pairs of a gene's own molecules: sum x (x - 1) / 2
    np.fill_diagonal(expected, (X * (X - 1) / 2).sum(axis=0))
    assert expected[0, 0] == 1 + 3  # 2 choose 2 + 3 choose 2
    np.testing.assert_allclose(compute(AnnData(X=X), "cooccurrence"), expected)


def test_ppmi_reference_loop():
    X = np.array([[2, 1, 0, 1], [3, 0, 1, 0], [0, 4, 1, 2], [1, 1, 1, 1]], dtype=float)
    co = X.T @ X
    np.fill_diagonal(co, (np.diag(co) - X.sum(axis=0)) / 2)
    total, rows = co.sum(), co.sum(axis=1)
    expected = np.zeros_like(co)
    for i in range(4):
        for j in range(4):
            if co[i, j] > 0:
                expected[i, j] = max(0.0, np.log(co[i, j] * total / (rows[i] * rows[j])))
    np.testing.assert_allclose(compute(AnnData(X=X), "ppmi"), expected, atol=1e-6)


def test_zero_variance_gene_is_zero_with_warning(adata):
    adata.X = adata.X.toarray()
    adata.X[:, 3] = 2.0
    with pytest.warns(UserWarning, match="zero variance"):
        values = compute(adata, "pearson")
    assert np.all(values[3] == 0) and np.all(values[:, 3] == 0)
    assert np.isfinite(values).all()


@pytest.mark.parametrize("target", ["mi", "genevector_mi"])
def test_mi_on_few_bulk_samples_advises_pearson(target):
    bulk = gv.datasets.synthetic(50, 60, 3, seed=0, kind="bulk")
    advice = r"Few dense samples, as in bulk RNA-seq: 50 samples, \d+% of the values nonzero.*'pearson'"
    for from_cache in (False, True):  # the second call reads the cache and still warns
        with pytest.warns(UserWarning, match=advice):
            gv.tl.coexpression(bulk, target, layer="counts", progress=False)
        assert bulk.uns["gv"][f"gv_{target}"]["from_cache"] == from_cache  # the advice does not stop the work


@pytest.mark.parametrize(
    ("n_samples", "kind"), [(200, "bulk"), (100, "single_cell")], ids=["200 bulk samples", "100 sparse cells"]
)
def test_mi_gives_no_bulk_advice_where_it_does_not_apply(n_samples, kind):
    import warnings

    data = gv.datasets.synthetic(n_samples, 60, 3, seed=0, kind=kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gv.tl.coexpression(data, layer="counts", progress=False, use_cache=False)


def test_bulk_advice_boundaries():
    import warnings

    dense = gv.datasets.synthetic(199, 60, 3, seed=0, kind="bulk")
    with pytest.warns(UserWarning, match="199 samples"):  # one sample under the limit
        gv.tl.coexpression(dense, layer="counts", progress=False, use_cache=False)
    half = np.zeros((40, 10), dtype=np.float32)
    half[:, :5] = np.arange(1, 41, dtype=np.float32)[:, None] * np.arange(1, 6)  # exactly 50% nonzero
    with pytest.warns(UserWarning, match="50% of the values nonzero"):
        gv.tl.coexpression(AnnData(half), progress=False, use_cache=False)
    half[0, 0] = 0.0  # just under half
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gv.tl.coexpression(AnnData(half), progress=False, use_cache=False)
        # pearson on few dense samples is what the advice asks for
        gv.tl.coexpression(dense, "pearson", progress=False, use_cache=False)


def test_custom_registered_array_and_dict_forms(adata, counts):
    @gv.targets.register_target("test_abs_pearson", overwrite=True, description="|r|")
    def abs_pearson(X, gene_names, power=1):
        return np.abs(np.corrcoef(X.toarray().T)) ** power

    @gv.targets.register_target("test_dict", overwrite=True)
    def as_dict(X, gene_names):
        return {a: {b: float(i + j) for j, b in enumerate(gene_names)} for i, a in enumerate(gene_names)}

    try:
        assert "test_abs_pearson" in gv.targets.available_targets()
        got = compute(adata, "test_abs_pearson", target_kwargs={"power": 2})
        np.testing.assert_allclose(got, np.corrcoef(counts.T) ** 2, atol=1e-6)
        got = compute(adata, "test_dict")
        n = adata.n_vars
        np.testing.assert_allclose(got, np.add.outer(np.arange(n), np.arange(n)))
    finally:
        gv.targets.unregister_target("test_abs_pearson")
        gv.targets.unregister_target("test_dict")
    assert "test_dict" not in gv.targets.available_targets()


def test_plain_callable_target(adata, counts):
    def detected_both(X, gene_names):
        binary = (X > 0).astype(float)
        return (binary.T @ binary).toarray()

    got = compute(adata, detected_both)
    np.testing.assert_allclose(got, (counts > 0).T.astype(float) @ (counts > 0).astype(float))
    assert adata.uns["gv"]["gv_detected_both"]["target"] == "detected_both"


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (np.zeros((2, 2)), "expected"),
        (np.full((24, 24), np.nan), "NaN"),
        ({"not_a_gene": {"g1": 1.0}}, "not in the selection"),
    ],
)
def test_bad_custom_outputs(adata, result, message):
    with pytest.raises(ValueError, match=message):
        compute(adata, lambda X, gene_names: result)
    assert not adata.varp


def test_builtins_cannot_be_replaced():
    with pytest.raises(ValueError, match="built-in"):
        gv.targets.register_target("mi", overwrite=True)(lambda X, g: X)
    with pytest.raises(ValueError, match="built-in"):
        gv.targets.unregister_target("pearson")
