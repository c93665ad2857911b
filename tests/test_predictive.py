"""gv.tl.predictive_genes: planted types' own genes come first, the inverse last; a tidy table."""

from __future__ import annotations

import numpy as np
import pytest

import geneverse as gv
from geneverse._core._annotate import group_directions, top_per_column


@pytest.fixture
def planted(planted_types):
    return planted_types  # read only here


def test_planted_types_get_their_program_genes(planted):
    table = gv.tl.predictive_genes(planted, "cell_type", n=10)
    assert list(table.columns) == ["group", "rank", "gene", "score"] and len(table) == 40
    assert list(table["rank"][:10]) == list(range(1, 11))
    program = planted.var["program"].astype(str)
    shares = {}
    for group, rows in table.groupby("group"):
        shares[group] = (program[rows["gene"]] == group.replace("type", "P")).mean()
        assert rows["score"].is_monotonic_decreasing
    # 20 of the 200 genes are each type's program (0.1 by chance); the share moves by a gene or two
    # with the vectors' last bits, which differ between processors
    assert min(shares.values()) >= 0.6 and np.mean(list(shares.values())) >= 0.8, shares
    inverse = gv.tl.predictive_genes(planted, "cell_type", n=5, inverse=True)
    assert inverse.groupby("group")["score"].max().max() < table.groupby("group")["score"].min().min()
    assert inverse.groupby("group")["score"].apply(lambda s: s.is_monotonic_increasing).all()


def test_core_against_a_direct_loop():
    rng = np.random.default_rng(1)
    cells, vectors = rng.normal(size=(30, 4)), rng.normal(size=(12, 4))
    groups = np.array(list("abc") * 10)
    names, directions = group_directions(cells, groups)
    assert list(names) == ["a", "b", "c"]
    unit = cells / np.linalg.norm(cells, axis=1, keepdims=True)
    for j, g in enumerate(names):
        mean = unit[groups == g].mean(axis=0)
        np.testing.assert_allclose(directions[:, j], mean / np.linalg.norm(mean))
        cosines = vectors @ directions[:, j] / np.linalg.norm(vectors, axis=1)
        order, scores = top_per_column(vectors, directions, 3)
        np.testing.assert_array_equal(order[:, j], np.argsort(-cosines)[:3])
        np.testing.assert_allclose(scores[:, j], np.sort(cosines)[::-1][:3])
        order, _ = top_per_column(vectors, directions, 12, lowest=True)
        np.testing.assert_array_equal(order[:, j], np.argsort(cosines))


def test_bad_input(planted):
    with pytest.raises(KeyError, match="No obs column 'nope'"):
        gv.tl.predictive_genes(planted, "nope")
    with pytest.raises(ValueError, match="n must be a positive integer"):
        gv.tl.predictive_genes(planted, "cell_type", n=0)
    with pytest.raises(KeyError, match="cell_embed"):
        gv.tl.predictive_genes(planted, "cell_type", cells_key="X_missing")
