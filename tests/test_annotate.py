"""gv.tl.annotate: planted cell types from markers, probabilities, files, groups and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.special import softmax

import geneverse as gv
from geneverse._core._annotate import (
    expected_calibration_error,
    expression_scores,
    fit_relative_temperature,
    gene_profiles,
    group_means,
    marker_directions,
)
from geneverse._core._chunks import CellChunks
from geneverse._core._selftrain import expression_components, self_train, training_features


@pytest.fixture
def planted(planted_types):
    return planted_types.copy()


def markers_of(data, n: int = 5, seed: int = 0) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    programs = data.var["program"].astype(str)
    return {
        f"type{p}": list(rng.choice(data.var_names[(programs == f"P{p}").to_numpy()], n, replace=False))
        for p in range(4)
    }


@pytest.mark.parametrize(("method", "refine"), [("expression", None), ("expression", False), ("vectors", None)])
def test_planted_types_are_recovered(planted, method, refine):
    data = planted.copy()
    gv.tl.annotate(data, markers_of(data), method=method, refine=refine)
    found = data.obs["gv_cell_type"]
    assert list(found.cat.categories) == ["type0", "type1", "type2", "type3", "unassigned"]
    assert (found.astype(str) == data.obs["cell_type"].astype(str)).mean() > 0.75
    probs = data.obsm["gv_cell_type_probabilities"]
    assert isinstance(probs, pd.DataFrame) and list(probs.columns) == ["type0", "type1", "type2", "type3"]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    record = data.uns["gv"]["gv_cell_type"]
    assert record["params"]["min_probability"] == 0.4 and record["missing"] == {}
    assert record["params"]["method"] == method
    if method == "expression":  # the layer the co-expression behind the vectors was computed from
        assert record["params"]["layer"] == "counts" and record["params"]["cells_key"] in (None, "None")
    refined = method == "expression" and refine is None  # the default of method="expression"
    assert record["params"]["refine"] == refined and record["refinement"]["refined"] == refined
    if refined:
        assert list(record["refinement"]["training_cells"]) and record["refinement"]["n_components"] == 50
        assert list(record["refinement"]["trained_types"]) == ["type0", "type1", "type2", "type3"]


def test_refine_false_is_the_softmax_of_the_marker_scores(planted):
    data = planted.copy()
    markers = markers_of(data)
    gv.tl.annotate(data, markers, refine=False, min_probability=0.0)
    index = {g: i for i, g in enumerate(data.var_names)}
    directions = marker_directions(
        data.varm["X_gv"], [np.array([index[g] for g in genes]) for genes in markers.values()]
    )
    scores = expression_scores(CellChunks(data.layers["counts"]), gene_profiles(data.varm["X_gv"], directions))
    expected = softmax(scores / (0.33 * scores.std()), axis=1)
    np.testing.assert_allclose(data.obsm["gv_cell_type_probabilities"].to_numpy(), expected, atol=1e-10)


def test_refine_fixes_cells_the_markers_miss():
    # two of the four types' markers are weak (2 markers; type2's second is type3's): the marker
    # scores alone confuse them; self-training on the expression of the confident cells recovers them
    data = gv.datasets.synthetic(1500, 200, 4, seed=3, genes_per_program=20)
    gv.tl.coexpression(data, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(data, progress=False)
    programs = data.var["program"].astype(str).to_numpy()
    genes = {p: list(data.var_names[programs == f"P{p}"]) for p in range(4)}
    markers = {
        "type0": genes[0][:5],
        "type1": genes[1][:5],
        "type2": [genes[2][0], genes[3][0]],
        "type3": genes[3][1:3],
    }
    truth = data.obs["cell_type"].astype(str)
    plain = gv.tl.annotate(data, markers, refine=False, min_probability=0.0, copy=True).obs["gv_cell_type"]
    refined = gv.tl.annotate(data, markers, min_probability=0.0, copy=True).obs["gv_cell_type"]
    assert (refined.astype(str) == truth).mean() > (plain.astype(str) == truth).mean() + 0.02
    assert (refined.astype(str) == truth).mean() > 0.85  # this generator's cells allow about 0.88


def test_refine_warns_about_a_type_no_cell_is_assigned_to(planted):
    data = planted.copy()
    markers = markers_of(data)
    markers["copy"] = list(markers["type0"])  # the same direction as type0: never the top type (ties go first)
    with pytest.warns(UserWarning, match=r"No cell was assigned to \['copy'\]"):
        gv.tl.annotate(data, markers, min_probability=0.0)
    probs = data.obsm["gv_cell_type_probabilities"]
    assert (probs["copy"] == 0).all() and "copy" not in set(data.obs["gv_cell_type"].astype(str))
    assert list(data.uns["gv"]["gv_cell_type"]["refinement"]["trained_types"]) == ["type0", "type1", "type2", "type3"]


def test_refine_needs_the_expression_and_leaves_adata_on_error(planted):
    data = planted.copy()
    before = set(data.obs.columns), set(data.obsm.keys())
    with pytest.raises(ValueError, match="refine=True reads the expression"):
        gv.tl.annotate(data, markers_of(data), method="vectors", refine=True)
    assert (set(data.obs.columns), set(data.obsm.keys())) == before


def test_expression_components_match_sklearn_pca():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(7)
    types = rng.integers(0, 3, size=300)
    rates = rng.gamma(2.0, 1.0, size=(3, 40))
    counts = rng.poisson(rates[types] * rng.uniform(0.5, 2.0, size=(300, 1))).astype(np.float64)
    counts[:, 5] = 0.0  # a gene constant over the cells: left out
    counts[7] = 0.0  # a cell without counts
    totals = counts.sum(axis=1, keepdims=True)
    logged = np.log1p(counts / np.where(totals > 0, totals, 1.0) * 1e4)
    for max_genes in (2000, 12):
        got = expression_components(
            CellChunks(sp.csr_matrix(counts), chunk_size=70), n_components=4, max_genes=max_genes
        )
        varying = np.flatnonzero(logged.var(axis=0) > 0)
        genes = np.sort(varying[np.argsort(-logged[:, varying].var(axis=0), kind="stable")[:max_genes]])
        standard = (logged[:, genes] - logged[:, genes].mean(axis=0)) / logged[:, genes].std(axis=0)
        expected = PCA(4, svd_solver="full").fit_transform(standard)
        signs = np.sign((got * expected).sum(axis=0))
        np.testing.assert_allclose(got * signs, expected, atol=1e-8)
    assert got.shape == (300, 4)
    assert expression_components(CellChunks(sp.csr_matrix(np.ones((10, 3))))).shape == (10, 0)  # nothing varies


def test_self_train_learns_the_classes_from_a_noisy_start():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(3), 200)
    features = rng.normal(size=(600, 6)) + 3.0 * np.eye(3, 6)[labels]
    start = np.full((600, 3), 0.2)
    start[np.arange(600), labels] = 0.6  # right, but only just
    wrong = rng.random(600) < 0.3  # 30% of the cells start on a wrong type, less sure of it
    start[wrong] = 0.3
    start[wrong, (labels[wrong] + 1) % 3] = 0.4
    logits, summary = self_train(start, training_features(features, start), np.ones(600, bool))
    assert (start.argmax(axis=1) == labels).mean() < 0.75
    assert (logits.argmax(axis=1) == labels).mean() > 0.95
    assert len(summary["training_cells"]) == 3 and summary["trained_types"] == [0, 1, 2]
    # a type no cell starts on gets no logit (probability 0); one type alone cannot train
    two = start.copy()
    two[:, 2] = 0.0
    logits, summary = self_train(two, features, np.ones(600, bool))
    assert np.all(np.isneginf(logits[:, 2])) and np.isfinite(logits[:, :2]).all()
    logits, summary = self_train(start, features, start.argmax(axis=1) == 0)
    assert logits is None and summary["trained_types"] == [0]
    # no component (nothing varies): the marker scores alone are the features
    logits, _ = self_train(start, training_features(np.zeros((600, 0)), features[:, :3]), np.ones(600, bool))
    assert (logits.argmax(axis=1) == labels).mean() > 0.9


@pytest.mark.parametrize("method", ["expression", "vectors"])
def test_groups_and_unassigned(planted, method):
    data = planted.copy()
    data.obs["group"] = data.obs["cell_type"].astype(str)  # the true types as groups: each group is pure
    gv.tl.annotate(data, markers_of(data), method=method, groupby="group", min_probability=0.0)
    found = data.obs["gv_cell_type"].astype(str)
    assert (found == data.obs["cell_type"].astype(str)).all()
    assert data.obsm["gv_cell_type_probabilities"].groupby(data.obs["group"]).nunique().max().max() == 1
    gv.tl.annotate(data, markers_of(data), method=method, min_probability=1.0)  # nothing is that sure
    assert (data.obs["gv_cell_type"] == "unassigned").all()


def test_missing_markers_are_reported_and_bad_input_leaves_adata(planted):
    data = planted.copy()
    markers = markers_of(data)
    markers["type0"] = [*markers["type0"], "NOT_A_GENE"]
    with pytest.warns(UserWarning, match="type0: NOT_A_GENE") as caught:
        gv.tl.annotate(data, markers)
    assert caught[0].filename == __file__  # the warning points at the user's call
    assert list(data.uns["gv"]["gv_cell_type"]["missing"]["type0"]) == ["NOT_A_GENE"]
    data = planted.copy()  # nothing annotated yet: a failed call must leave no trace
    before = data.copy()
    g = markers_of(data)["type1"]
    for bad, error, message in [
        ({"type0": ["NOT_A_GENE"], "type1": g}, ValueError, "No marker of \\['type0'\\]"),
        ({"type1": g}, ValueError, "at least two cell types"),
        ({"type0": {"up": g[:2], "down": g[1:3]}, "type1": g}, ValueError, "both marker and negative"),
        ({"unassigned": g, "type1": g}, ValueError, "rename that type"),
        ({1: g, "1": g}, ValueError, "given twice"),
        ({"type0": []}, ValueError, "no \\(up\\) marker"),
        ({"type0": "g1"}, TypeError, "lists of gene names"),
        ({}, TypeError, "non-empty"),
        ({"type0": {"up": ["g1"], "sideways": ["g2"]}}, ValueError, "'up' and 'down'"),
    ]:
        with pytest.raises(error, match=message):
            gv.tl.annotate(data, bad)
    with pytest.raises(KeyError, match="No obs column 'nope'"):
        gv.tl.annotate(data, markers_of(data), groupby="nope")
    with pytest.raises(KeyError, match="cell_embed"):
        gv.tl.annotate(data, markers_of(data), method="vectors", cells_key="X_missing")
    with pytest.raises(ValueError, match="method='vectors'"):
        gv.tl.annotate(data, markers_of(data), cells_key="X_gv_corrected")  # cell vectors: the other method
    with pytest.raises(ValueError, match="layer= is read by method='expression'"):
        gv.tl.annotate(data, markers_of(data), method="vectors", layer="counts")
    with pytest.raises(ValueError, match="Unknown method"):
        gv.tl.annotate(data, markers_of(data), method="cosine")
    with pytest.raises(KeyError, match="Layer 'nope'"):
        gv.tl.annotate(data, markers_of(data), layer="nope")
    with pytest.raises(ValueError, match="min_probability"):
        gv.tl.annotate(data, markers_of(data), min_probability=2)
    data.obsm["X_small"] = data.obsm["X_gv_cells"][:, :3]
    with pytest.raises(ValueError, match="3 dimensions"):
        gv.tl.annotate(data, markers_of(data), method="vectors", cells_key="X_small")
    del data.obsm["X_small"]
    counts = data.layers["counts"]
    data.layers["counts"] = -counts  # not counts: TF-IDF needs non-negative values
    with pytest.raises(ValueError, match="negative"):
        gv.tl.annotate(data, markers_of(data))
    del data.layers["counts"]  # the layer the co-expression was computed from is gone: name the fix
    with pytest.raises(KeyError, match="which is gone; pass `layer=`"):
        gv.tl.annotate(data, markers_of(data))
    data.layers["counts"] = counts
    assert data.obs.equals(before.obs) and set(data.obsm) == set(before.obsm) and set(data.uns) == set(before.uns)


def test_negative_markers_empty_cells_and_gene_symbols(planted):
    data = planted.copy()
    markers = markers_of(data)
    plain = gv.tl.annotate(data, markers, copy=True).obsm["gv_cell_type_probabilities"]
    # type0 against type1's genes: type0's probability falls where type1 is active
    markers["type0"] = {"up": markers["type0"], "down": markers["type1"]}
    negative = gv.tl.annotate(data, markers, copy=True)
    assert list(negative.uns["gv"]["gv_cell_type"]["markers"]["type0"]["down"]) == markers["type1"]
    in_type1 = (data.obs["cell_type"] == "type1").to_numpy()
    assert negative.obsm["gv_cell_type_probabilities"]["type0"][in_type1].mean() < plain["type0"][in_type1].mean()
    data.obsm["X_gv_cells"][:5] = 0.0  # cells with nothing to go by: a zero vector, or no counts
    counts = data.layers["counts"].tolil()  # the layer the co-expression was computed from: the default
    counts[5:10] = 0
    data.layers["counts"] = counts.tocsr()
    for method, empty in (("vectors", slice(0, 5)), ("expression", slice(5, 10))):
        gv.tl.annotate(data, markers_of(data), method=method, min_probability=0.0)
        assert (data.obs["gv_cell_type"][empty] == "unassigned").all()
        np.testing.assert_allclose(data.obsm["gv_cell_type_probabilities"].to_numpy()[empty], 0.25)
        assert (data.obs["gv_cell_type"][10:] != "unassigned").mean() > 0.99
    data.var["symbol"] = [f"SYM{i}" for i in range(data.n_vars)]
    renamed = {t: [f"SYM{data.var_names.get_loc(g)}" for g in genes] for t, genes in markers_of(data).items()}
    by_symbol = gv.tl.annotate(data, renamed, gene_symbols="symbol", min_probability=0.0, copy=True)
    assert by_symbol.obs["gv_cell_type"].equals(data.obs["gv_cell_type"])


def test_marker_files(tmp_path, planted):
    markers = {"A": ["g1", "g2"], "B": {"up": ["g3"], "down": ["g1"]}}
    (tmp_path / "m.json").write_text(json.dumps({"markers": markers, "sources": {}}))
    (tmp_path / "m.gmt").write_text("A\tdesc\tg1\tg2\nB\tdesc\tg3\n")
    pd.DataFrame(
        {"cell_type": ["A", "A", "B", "B"], "gene": ["g1", "g2", "g3", "g1"], "direction": ["up", "up", "up", "down"]}
    ).to_csv(tmp_path / "m.csv", index=False)
    expected = {"A": {"up": ["g1", "g2"], "down": []}, "B": {"up": ["g3"], "down": ["g1"]}}
    assert gv.tl.read_markers(tmp_path / "m.json") == expected
    assert gv.tl.read_markers(tmp_path / "m.csv") == expected
    assert gv.tl.read_markers(tmp_path / "m.gmt") == {"A": expected["A"], "B": {"up": ["g3"], "down": []}}
    (tmp_path / "plain.tsv").write_text("cell_type\tgene\nA\tg1\nA\tg1\nB\t g2\n")  # no direction column
    plain = {"A": {"up": ["g1"], "down": []}, "B": {"up": ["g2"], "down": []}}
    assert gv.tl.read_markers(tmp_path / "plain.tsv") == plain
    (tmp_path / "empty.csv").write_text("cell_type,gene\n")
    with pytest.raises(ValueError, match="holds no markers"):
        gv.tl.read_markers(tmp_path / "empty.csv")
    (tmp_path / "bad.csv").write_text("type,gene\nA,g1\n")
    with pytest.raises(ValueError, match="cell_type and gene"):
        gv.tl.read_markers(tmp_path / "bad.csv")
    (tmp_path / "m.xlsx").write_text("")
    with pytest.raises(ValueError, match="Unknown marker file type"):
        gv.tl.read_markers(tmp_path / "m.xlsx")
    with pytest.raises(FileNotFoundError, match="No marker file"):
        gv.tl.read_markers(tmp_path / "absent.json")
    data = planted.copy()
    path = tmp_path / "planted.json"
    path.write_text(json.dumps(markers_of(data)))
    gv.tl.annotate(data, str(path))
    assert data.obs["gv_cell_type"].notna().all()


def test_shipped_pbmc_markers_are_in_pbmc68k():
    markers = gv.datasets.pbmc_markers(with_sources=True)
    genes = set(gv.datasets.pbmc68k().var_names)
    assert set(markers["markers"]) == set(markers["sources"]) == {"CD4 T", "CD8 T", "NK", "B", "Monocyte", "DC", "HSPC"}
    assert all(set(g) <= genes for g in markers["markers"].values())


def test_core_directions_groups_and_calibration():
    vectors = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    directions = marker_directions(vectors, [np.array([0, 1]), np.array([2])], [np.array([], dtype=int), np.array([0])])
    np.testing.assert_allclose(directions[:, 0], [1.0, 0.0])
    np.testing.assert_allclose(directions[:, 1], np.array([-1.0, 1.0]) / np.sqrt(2))  # up minus down, unit
    scores = np.arange(12.0).reshape(6, 2)
    np.testing.assert_allclose(group_means(scores, np.array(list("aabbcc")))[:2], [[1.0, 2.0], [1.0, 2.0]])
    # scores drawn from a softmax at a known relative temperature: the fit finds it back
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20000, 4))
    true_relative = 0.5
    labels = np.array([rng.choice(4, p=p) for p in softmax(logits / (true_relative * logits.std()), axis=1)])
    assert abs(fit_relative_temperature(logits, labels) - true_relative) < 0.05
    perfect = np.eye(4)[labels]
    assert expected_calibration_error(perfect, labels) == 0.0
    assert expected_calibration_error(np.full((4, 2), 0.5), np.array([0, 0, 0, 1])) == pytest.approx(0.25)


def test_expression_scores_match_a_direct_computation():
    rng = np.random.default_rng(4)
    counts = rng.poisson(1.0, size=(40, 9)).astype(np.float64)
    counts[3] = 0.0  # a cell without counts: score 0
    vectors = rng.normal(size=(9, 5))
    vectors[7] = np.nan  # a gene without a vector: weight 0
    directions = marker_directions(np.nan_to_num(vectors), [np.array([0, 1]), np.array([2, 3])])
    got = expression_scores(CellChunks(sp.csr_matrix(counts), chunk_size=7), gene_profiles(vectors, directions))
    # direct: TF-IDF (share of the cell's total x log(n / (1 + cells detected))) times the rectified,
    # squared cosines of each gene to each direction, a type's weights scaled to unit length
    totals = counts.sum(axis=1, keepdims=True)
    tfidf = counts / np.where(totals > 0, totals, 1) * np.log(40 / (1 + (counts > 0).sum(axis=0)))
    unit = np.nan_to_num(vectors) / np.maximum(np.linalg.norm(np.nan_to_num(vectors), axis=1, keepdims=True), 1e-300)
    weights = np.clip(unit @ directions, 0, None) ** 2
    expected = tfidf @ (weights / np.linalg.norm(weights, axis=0))
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert np.all(got[3] == 0) and np.all(gene_profiles(vectors, directions)[7] == 0)


def test_h5ad_round_trip_and_copy(planted, tmp_path):
    import anndata as ad

    data = planted.copy()
    out = gv.tl.annotate(data, markers_of(data), copy=True)
    assert "gv_cell_type" not in data.obs and "gv_cell_type" in out.obs
    out.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    assert back.obs["gv_cell_type"].equals(out.obs["gv_cell_type"])
    np.testing.assert_allclose(back.obsm["gv_cell_type_probabilities"], out.obsm["gv_cell_type_probabilities"])
    assert list(back.uns["gv"]["gv_cell_type"]["markers"]["type0"]["up"]) == markers_of(data)["type0"]
