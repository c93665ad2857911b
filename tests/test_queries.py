"""similar, analogy and exact similar_pairs on vectors with known answers; markdown reports."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

import geneverse as gv


def with_vectors(vectors: np.ndarray, names: list[str] | None = None, key: str = "X_gv") -> AnnData:
    adata = AnnData(X=sp.csr_matrix((3, len(vectors))))
    adata.var_names = names or [f"g{i}" for i in range(len(vectors))]
    adata.varm[key] = np.asarray(vectors, dtype=np.float32)
    return adata


def royal():
    # dims: royalty, gender (+ male), noise
    names = ["king", "queen", "man", "woman", "prince", "apple", "stone"]
    vectors = np.array(
        [
            [1.0, 1.0, 0.1],
            [1.0, -1.0, 0.1],
            [0.0, 1.0, 0.0],
            [0.0, -1.0, 0.0],
            [0.9, 1.1, 0.3],
            [-0.2, 0.1, 1.0],
            [-0.5, -0.1, 0.9],
        ]
    )
    return with_vectors(vectors, names)


def test_similar_known_order():
    adata = with_vectors(np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0], [0.5, 0.5]]))
    table = gv.tl.similar(adata, "g0", n=4)
    assert table.gene.tolist() == ["g1", "g4", "g2", "g3"]
    expected = [0.9 / np.hypot(0.9, 0.1), np.sqrt(0.5), 0.0, -1.0]
    np.testing.assert_allclose(table.similarity, expected, atol=1e-6)
    dot = gv.tl.similar(adata, "g0", n=2, metric="dot")
    assert dot.gene.tolist() == ["g1", "g4"]
    euclid = gv.tl.similar(adata, "g0", n=1, metric="euclidean")
    assert euclid.gene.tolist() == ["g1"] and euclid.similarity[0] == pytest.approx(-np.hypot(0.1, 0.1), abs=1e-6)


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_analogy_king_man_woman(method):
    table = gv.tl.analogy(royal(), "king", "man", "woman", n=3, method=method)
    assert table.gene[0] == "queen"
    assert not {"king", "man", "woman"} & set(table.gene)


def brute_force_pairs(vectors: np.ndarray, a: int, b: int, n: int):
    query = vectors[a] - vectors[b]
    scores = []
    for x, y in itertools.permutations(range(len(vectors)), 2):
        if {x, y} & {a, b}:
            continue
        diff = vectors[x] - vectors[y]
        scores.append((diff @ query / np.linalg.norm(diff) / np.linalg.norm(query), x, y))
    scores.sort(key=lambda t: (-t[0], t[1], t[2]))
    return scores[:n]


@pytest.mark.parametrize("block_size", [None, 7])
def test_similar_pairs_equals_brute_force(block_size, capsys):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 16))
    adata = with_vectors(vectors)
    table = gv.tl.similar_pairs(adata, "g3", "g17", n=10, block_size=block_size, progress=block_size is not None)
    # the bar over blocks is shown unless turned off, and does not change the answer
    assert ("similar_pairs" in capsys.readouterr().err) is (block_size is not None)
    expected = brute_force_pairs(vectors.astype(np.float32).astype(float), 3, 17, 10)
    assert list(zip(table.gene_x, table.gene_y, strict=True)) == [(f"g{x}", f"g{y}") for _, x, y in expected]
    np.testing.assert_allclose(table.similarity, [s for s, _, _ in expected], atol=1e-9)
    assert not {"g3", "g17"} & (set(table.gene_x) | set(table.gene_y))


def test_similar_pairs_handles_both_orientations():
    # (p, q) points along a - b; (q, p) points exactly against it: only the first may rank high
    vectors = np.array([[1.0, 0, 0], [0, 0, 0.0001], [2.0, 0, 0.5], [0, 0, 0.5], [0, 1, 0], [0, 1.2, 0.1]])
    adata = with_vectors(vectors, ["a", "b", "p", "q", "r", "s"])
    table = gv.tl.similar_pairs(adata, "a", "b", n=12)
    assert (table.gene_x[0], table.gene_y[0]) == ("p", "q")
    reverse = table[(table.gene_x == "q") & (table.gene_y == "p")].similarity.item()
    assert reverse == pytest.approx(-table.similarity[0])
    assert len(table) == 12  # all ordered pairs of the 4 other genes


def test_gene_symbols_descriptions_and_nan_rows():
    adata = royal()
    adata.var["symbol"] = [n.upper() for n in adata.var_names]
    adata.var["description"] = [f"about {n}" for n in adata.var_names]
    adata.varm["X_gv"][-1] = np.nan  # "stone" has no vector
    table = gv.tl.similar(adata, "KING", n=10, gene_symbols="symbol")
    assert "STONE" not in set(table.gene) and "KING" not in set(table.gene)
    assert table.description[0] == f"about {table.gene[0].lower()}"
    with pytest.raises(ValueError, match="no usable vector"):
        gv.tl.similar(adata, "stone")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda a: gv.tl.similar(a, "kinf"), KeyError, "Close matches: \\['king'"),
        (lambda a: gv.tl.similar(a, "king", vectors_key="X_none"), KeyError, "gv.tl.embed"),
        (lambda a: gv.tl.similar(a, "king", n=0), ValueError, "n must be"),
        (lambda a: gv.tl.similar(a, "king", metric="manhattan"), ValueError, "metric"),
        (lambda a: gv.tl.analogy(a, "king", "man", "woman", method="3cosfoo"), ValueError, "3cosadd"),
        (lambda a: gv.tl.similar_pairs(a, "king", "king"), ValueError, "two different"),
        (lambda a: gv.tl.similar_pairs(a, "king", "man", n=2.5), ValueError, "n must"),
        (lambda a: gv.tl.similar(a, "KING", gene_symbols="nope"), KeyError, "gene_symbols"),
    ],
)
def test_bad_queries(call, error, message):
    with pytest.raises(error, match=message):
        call(royal())


def test_nan_vectors_everywhere_give_clear_error():
    adata = with_vectors(np.full((4, 3), np.nan))
    with pytest.raises(ValueError, match="no usable vector"):
        gv.tl.similar(adata, "g0")


def test_to_markdown_links_and_descriptions():
    ids = ["ENSG00000141510", "ENSG00000012048", "ENSG00000139618"]
    adata = with_vectors(np.array([[1.0, 0], [0.9, 0.2], [0, 1]]), ids)
    adata.var["description"] = ["tumor protein p53", "BRCA1 DNA repair", "BRCA2 | DNA repair"]
    text = gv.io.to_markdown(gv.tl.similar(adata, ids[0], n=2), adata)
    lines = text.strip().splitlines()
    assert lines[0] == "| gene | similarity | description |"
    assert lines[2].startswith("| [ENSG00000012048](https://www.proteinatlas.org/ENSG00000012048) | 0.976 |")
    assert "BRCA2 \\| DNA repair" in text  # pipes escaped
    plain = gv.io.to_markdown(pd.DataFrame({"gene_a": ["CD3D"], "gene_b": ["CD3E"], "score": [0.5]}))
    assert plain.splitlines()[2] == "| CD3D | CD3E | 0.500 |"


@pytest.mark.parametrize("seed", range(8))
def test_similar_pairs_float32_screen_is_exact(seed):
    # the float32 screen must return what scoring every ordered pair in float64 returns, with
    # duplicated genes, near-duplicates 1e-9 apart, integer ties and blocks of any size
    from geneverse._core._search import _all_pairs, similar_pairs, valid_rows

    rng = np.random.default_rng(seed)
    genes, dims = int(rng.integers(30, 300)), int(rng.integers(2, 20))
    vectors = rng.normal(size=(genes, dims))
    vectors[rng.integers(3, genes, 8)] = vectors[3]
    vectors[4] = vectors[5] + 1e-9
    if seed % 2:
        vectors = np.round(vectors * 2)
    n = int(rng.integers(1, 60))
    hits = similar_pairs(vectors, 0, 1, n=n, block_size=int(rng.integers(1, 40)) if seed % 3 else None)
    allowed = valid_rows(vectors)
    allowed[[0, 1]] = False
    clean = vectors / np.abs(vectors).max()
    query = clean[0] - clean[1]
    along = clean @ query / np.linalg.norm(query)
    reference = _all_pairs(clean, along, (clean**2).sum(axis=1), allowed, n, None, None)
    assert len(hits.scores) == len(reference.scores)
    # each returned pair's own cosine (from its difference) equals the reference's score at its rank:
    # the same top n, in the same order up to ties that differ only by rounding
    difference = vectors[hits.first] - vectors[hits.second]
    pointing = vectors[0] - vectors[1]
    own = difference @ pointing / np.linalg.norm(difference, axis=1) / np.linalg.norm(pointing)
    np.testing.assert_allclose(hits.scores, reference.scores, rtol=0, atol=1e-9)
    np.testing.assert_allclose(own, reference.scores, rtol=0, atol=1e-9)
    clear = reference.scores > reference.scores[-1] + 1e-9  # pairs above the boundary's ties
    found = set(zip(hits.first[clear], hits.second[clear], strict=True))
    assert found == set(zip(reference.first[clear], reference.second[clear], strict=True))


def test_similar_pairs_with_fewer_pairs_along_the_query_than_asked():
    # 4 other genes: 6 pairs point along a - b and 6 against; n=12 needs the float64 scan of all pairs
    rng = np.random.default_rng(0)
    adata = with_vectors(rng.normal(size=(6, 3)), ["a", "b", "p", "q", "r", "s"])
    table = gv.tl.similar_pairs(adata, "a", "b", n=12)
    assert len(table) == 12 and (table.similarity.to_numpy()[6:] < 0).all()


def test_similar_pairs_with_many_genes_sharing_one_vector():
    # an imported table with one fallback vector for many genes: those pairs (distance 0) are never
    # answers; the search stays exact and rescores them in bounded blocks
    from geneverse._core._search import _all_pairs, similar_pairs, valid_rows

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(400, 12))
    vectors[200:] = vectors[5]
    hits = similar_pairs(vectors, 0, 1, n=15)
    allowed = valid_rows(vectors)
    allowed[[0, 1]] = False
    clean = vectors / np.abs(vectors).max()
    along = clean @ (clean[0] - clean[1]) / np.linalg.norm(clean[0] - clean[1])
    reference = _all_pairs(clean, along, (clean**2).sum(axis=1), allowed, 15, None, None)
    np.testing.assert_allclose(hits.scores, reference.scores, rtol=0, atol=1e-9)
    shared = set(range(200, 400)) | {5}
    assert not any(x in shared and y in shared for x, y in zip(hits.first, hits.second, strict=True))


@pytest.mark.parametrize("block_size", [None, 100])
def test_similar_pairs_finds_pairs_that_point_exactly_along_the_query(block_size):
    # genes on the line of a - b: their pairs score exactly 1, and float64 rounds some to 1 + 1e-16;
    # the float32 bound must not fall below them (it is capped just above 1, not at 1)
    rng = np.random.default_rng(11)
    query = rng.normal(size=16)
    vectors = rng.normal(size=(1500, 16))
    vectors[:500] = np.outer(rng.normal(size=500), query)
    vectors[0], vectors[1] = 2 * query, 0.5 * query
    hits = similar_pairs_core(vectors, 0, 1, n=25, block_size=block_size)
    difference = vectors[hits.first] - vectors[hits.second]
    own = difference @ query / np.linalg.norm(difference, axis=1) / np.linalg.norm(query)
    np.testing.assert_allclose(own, 1.0, atol=1e-9)  # 25 aligned pairs, none missed for a lower one
    np.testing.assert_allclose(hits.scores, 1.0, atol=1e-9)


def similar_pairs_core(*args, **kwargs):
    from geneverse._core._search import similar_pairs

    return similar_pairs(*args, **kwargs)
