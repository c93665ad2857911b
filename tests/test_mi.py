"""The mi target against hand-computed values, a plain-loop reference, sklearn and the peer."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import mutual_info_score

import geneverse as gv
from geneverse._core._chunks import CellChunks, gene_values
from geneverse._core._mi import mutual_information, quantile_edges

from .conftest import make_counts


def reference_codes(column: np.ndarray, n_bins: int) -> np.ndarray:
    """GeneVector's discretisation written plainly for one gene."""
    codes = np.zeros(len(column), dtype=int)
    nonzero = column[column > 0]
    if len(nonzero) == 0:
        return codes
    k = min(n_bins, len(np.unique(nonzero)))
    if k <= 1:
        codes[column > 0] = 1
        return codes
    edges = np.percentile(nonzero, np.linspace(0, 100, k + 1)[1:-1])
    codes[column > 0] = np.searchsorted(edges, nonzero, side="right") + 1
    return codes


def reference_mi(X: np.ndarray, n_bins: int = 10, signed: bool = True, double_zeros: bool = False) -> np.ndarray:
    """Pair-by-pair loop with sklearn's contingency MI (nats -> bits); shares no code with the kernel."""
    n_genes = X.shape[1]
    codes = np.column_stack([reference_codes(X[:, g], n_bins) for g in range(n_genes)])
    out = np.zeros((n_genes, n_genes))
    for a in range(n_genes):
        for b in range(n_genes):
            keep = np.ones(len(X), bool) if double_zeros else (codes[:, a] > 0) | (codes[:, b] > 0)
            if keep.sum() == 0 or not (X[:, a] > 0).any() or not (X[:, b] > 0).any():
                continue
            out[a, b] = mutual_info_score(codes[keep, a], codes[keep, b]) / np.log(2)
            if signed:
                xa, xb = X[:, a], X[:, b]
                r = np.corrcoef(xa, xb)[0, 1] if xa.std() > 0 and xb.std() > 0 else 0.0
                # integer data can be exactly uncorrelated; corrcoef then returns rounding noise
                out[a, b] *= np.sign(r) if abs(r) > 1e-12 else 0.0
    return out


def run(X, **kwargs) -> np.ndarray:
    return mutual_information(CellChunks(sp.csr_matrix(X), chunk_size=kwargs.pop("chunk_size", 10_000)), **kwargs)


def test_hand_computed_pair():
    # a bins: 1,2 -> bin 1; 3,4 -> bin 2 (edge = median 2.5); b has one nonzero value -> bin 1.
    # Cell 3 (both zero) is dropped; joint over 5 cells gives MI = log2(1.25); r(a, b) > 0.
    X = np.array([[0, 5], [1, 0], [2, 5], [0, 0], [3, 5], [4, 5]], dtype=float)
    M = run(X, n_bins=2)
    assert M[0, 1] == pytest.approx(np.log2(1.25), abs=1e-6)
    assert M[1, 0] == pytest.approx(np.log2(1.25), abs=1e-6)
    assert M[0, 0] == pytest.approx(1.0, abs=1e-6)  # entropy of two equally filled bins
    assert M[1, 1] == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("n_bins", [1, 3, 10])
@pytest.mark.parametrize("double_zeros", [False, True])
def test_matches_plain_reference(n_bins, double_zeros):
    X = make_counts(120, 14, seed=n_bins)
    X[:, 5] = 0  # never expressed
    X[:, 6] = (X[:, 6] > 0) * 3.0  # a single nonzero value
    expected = reference_mi(X, n_bins=n_bins, double_zeros=double_zeros)
    got = run(X, n_bins=n_bins, include_double_zeros=double_zeros)
    off = ~np.eye(len(expected), dtype=bool)
    np.testing.assert_allclose(got[off], expected[off], atol=2e-6)


def test_unsigned_and_entropy_diagonal():
    X = make_counts(100, 8, seed=3)
    got = run(X, signed=False)
    assert (got >= 0).all()
    for g in range(X.shape[1]):
        codes = reference_codes(X[:, g], 10)
        p = np.bincount(codes[codes > 0]) / (codes > 0).sum()
        p = p[p > 0]
        assert got[g, g] == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-6)


def test_quantile_edges_equal_numpy_percentile():
    rng = np.random.default_rng(7)
    X = np.round(rng.gamma(0.5, 3.0, size=(300, 12)), 1) * (rng.random((300, 12)) < 0.6)
    X[:, 0] = np.round(X[:, 0])  # heavy ties
    values = gene_values(CellChunks(sp.csr_matrix(X), chunk_size=64))
    for n_bins in (2, 5, 10):
        edges = quantile_edges(values, n_bins)
        for g in range(X.shape[1]):
            nonzero = X[X[:, g] > 0, g]
            k = min(n_bins, len(np.unique(nonzero)))
            if k >= 2:
                expected = np.percentile(nonzero, np.linspace(0, 100, k + 1)[1:-1])
                np.testing.assert_array_equal(edges[g, : k - 1], expected)
                assert np.isinf(edges[g, k - 1 :]).all()


def test_backends_chunks_blocks_and_threads_agree():
    X = make_counts(260, 40, seed=5)
    base = run(X)
    np.testing.assert_array_equal(run(X, backend="torch", device="cpu"), base)
    np.testing.assert_array_equal(run(X, chunk_size=37), base)
    np.testing.assert_array_equal(run(X, block_size=7, n_jobs=1), base)
    np.testing.assert_array_equal(run(X, block_size=16, n_jobs=2), base)
    np.testing.assert_array_equal(base, base.T)


def test_matches_genevector_numpy_backend(pbmc):
    metrics = pytest.importorskip("genevector.metrics", reason="peer not installed (benchmarks/install_genevector.py)")
    genes = pbmc.var_names[:40].tolist()
    X = pbmc[:, genes].layers["counts"]
    peer = metrics.compute_mi_vectorized(sp.csr_matrix(X), genes, n_bins=10, signed=True)
    ours = run(X.toarray())
    for i, a in enumerate(genes):
        for j, b in enumerate(genes):
            if i != j:
                # the peer rounds to 5 decimals; its sign differs only where r == 0 exactly
                assert abs(ours[i, j]) == pytest.approx(abs(peer[a][b]), abs=6e-6)
                if abs(peer[a][b]) > 1e-4:
                    assert np.sign(ours[i, j]) == np.sign(peer[a][b])


def test_targets_mi_is_the_plug_in_and_genevector_mi_the_peers_estimator(pbmc):
    adata = pbmc[:, :30].copy()
    X = adata.layers["counts"]
    gv.tl.coexpression(adata, layer="counts", use_cache=False, progress=False)
    gv.tl.coexpression(adata, "genevector_mi", layer="counts", use_cache=False, progress=False)
    np.testing.assert_allclose(adata.varp["gv_mi"], run(X, include_double_zeros=True), atol=1e-6)
    np.testing.assert_allclose(adata.varp["gv_genevector_mi"], run(X, include_double_zeros=False), atol=1e-6)
    assert not np.allclose(adata.varp["gv_mi"], adata.varp["gv_genevector_mi"])
    assert adata.uns["gv"]["gv_mi"]["params"]["include_double_zeros"] is True
    assert adata.uns["gv"]["gv_genevector_mi"]["params"]["include_double_zeros"] is False
