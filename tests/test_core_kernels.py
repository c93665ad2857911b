"""The kernels in ``geneverse._core`` on plain arrays: known answers and planted structure, no AnnData."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from geneverse._core._bedspace import bag_operator, train_bedspace
from geneverse._core._cells import cell_weights, inverse_document_frequency, weighted_cell_vectors
from geneverse._core._chunks import CellChunks
from geneverse._core._programs import expression_bins, score_weights

COUNTS = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


def test_tfidf_weights_by_hand():
    chunks = CellChunks(sp.csr_matrix(COUNTS), chunk_size=2)
    idf = inverse_document_frequency(chunks)
    np.testing.assert_allclose(idf, np.log(4 / (1 + np.array([2, 2, 1]))))
    weights = cell_weights(sp.csr_matrix(COUNTS), "tfidf", idf).toarray()
    totals = COUNTS.sum(axis=1, keepdims=True)
    expected = np.divide(COUNTS, totals, out=np.zeros_like(COUNTS), where=totals > 0) * idf
    np.testing.assert_allclose(weights, expected)
    np.testing.assert_allclose(cell_weights(sp.csr_matrix(COUNTS), "log1p").toarray(), np.log1p(COUNTS))
    with pytest.raises(ValueError, match="Unknown weighting"):
        cell_weights(sp.csr_matrix(COUNTS), "bm25")


@pytest.mark.parametrize("weighting", ["raw", "log1p", "tfidf"])
def test_weighted_cell_vectors_match_a_dense_reference(weighting):
    rng = np.random.default_rng(0)
    counts = rng.poisson(1.0, size=(30, 8)).astype(float)
    counts[3] = 0  # a cell with nothing
    vectors = rng.normal(size=(8, 5))
    cells, empty = weighted_cell_vectors(CellChunks(sp.csr_matrix(counts), chunk_size=7), vectors, weighting)
    if weighting == "raw":
        weights = counts
    elif weighting == "log1p":
        weights = np.log1p(counts)
    else:
        idf = np.log(30 / (1 + (counts > 0).sum(axis=0)))
        totals = counts.sum(axis=1, keepdims=True)
        weights = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0) * idf
    reference = weights @ vectors
    norms = np.linalg.norm(reference, axis=1, keepdims=True)
    reference = np.divide(reference, norms, out=np.zeros_like(reference), where=norms > 0)
    np.testing.assert_allclose(cells, reference, atol=1e-6)
    assert empty.tolist() == [i == 3 for i in range(30)]


def test_expression_bins_are_equal_sized_with_ties_in_gene_order():
    means = np.array([5.0, 1.0, 1.0, 3.0, 0.0, 2.0])
    bins = expression_bins(means, 3)
    assert bins.tolist() == [2, 0, 1, 2, 0, 1]
    assert np.bincount(bins).tolist() == [2, 2, 2]


def test_score_weights_average_the_program_minus_matched_controls():
    rng = np.random.default_rng(0)
    bins = np.repeat(np.arange(4), 10)  # 40 genes, 4 bins of 10
    members = [np.array([0, 1, 12]), np.array([35])]
    weights, controls = score_weights(members, bins, ctrl_size=3, rng=rng)
    assert weights.shape == (40, 2)
    np.testing.assert_allclose(weights[[0, 1, 12], 0], 1 / 3)
    np.testing.assert_allclose(weights[:, 0].sum(), 0.0, atol=1e-12)  # +1 for the program, -1 for controls
    for genes, chosen in zip(members, controls, strict=True):
        assert not set(chosen) & set(genes)
        assert set(bins[chosen]) == set(bins[genes])  # controls come from the program's bins
    assert len(controls[0]) == 6 and len(controls[1]) == 3
    plain, none = score_weights(members, bins, ctrl_size=0, rng=rng)
    assert all(len(c) == 0 for c in none) and (plain >= 0).all()


def _planted_bags(n_labels: int = 3, sets_per_label: int = 12, regions: int = 60, seed: int = 0):
    """Sets drawn mostly from their label's own block of regions."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    block = regions // n_labels
    for label in range(n_labels):
        for _ in range(sets_per_label):
            own = rng.choice(np.arange(label * block, (label + 1) * block), size=8, replace=False)
            noise = rng.choice(regions, size=2, replace=False)
            row = np.zeros(regions)
            row[np.concatenate([own, noise])] = 1
            rows.append(row)
            labels.append(label)
    return sp.csr_matrix(np.array(rows)), np.array(labels)


def test_bedspace_recovers_planted_labels():
    tokens, labels = _planted_bags()
    bags = bag_operator(tokens)
    np.testing.assert_allclose(np.asarray(bags.sum(axis=1)).ravel(), 1.0)
    sets = np.arange(len(labels))
    result = train_bedspace(
        bags, sets, labels, 3, dim=16, epochs=30, lr=0.05, margin=0.05, n_negatives=2, batch_size=8, seed=0,
        device="cpu",
    )  # fmt: skip
    assert result.regions.shape == (60, 16) and result.labels.shape == (3, 16)
    assert result.loss[-1] < result.loss[0]
    set_vectors = bags @ result.regions
    set_vectors /= np.linalg.norm(set_vectors, axis=1, keepdims=True)
    label_vectors = result.labels / np.linalg.norm(result.labels, axis=1, keepdims=True)
    predicted = (set_vectors @ label_vectors.T).argmax(axis=1)
    assert (predicted == labels).mean() > 0.9


def test_bedspace_divergence_raises():
    tokens, labels = _planted_bags()
    with pytest.raises(ValueError, match="diverged"):
        train_bedspace(
            bag_operator(tokens), np.arange(len(labels)), labels, 3, dim=4, epochs=3, lr=1e38, margin=0.05,
            n_negatives=2, batch_size=8, seed=0, device="cpu",
        )  # fmt: skip
