"""gv.tl.batch_correct and gv.bench.batch_mixing: planted batches mixed, cell types kept, bad input refused."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import geneverse as gv
from geneverse._core._batch import soft_cluster_correct, unit_rows
from geneverse.bench import batch_mixing, knn_accuracy


def offset_cells(n_per: int = 100, n_types: int = 4, n_batches: int = 3, seed: int = 0, dims: int = 10) -> ad.AnnData:
    """Types as tight clusters on the sphere, each batch shifted by its own offset (of every type alike)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_types, dims)) * 2
    offsets = rng.normal(size=(n_batches, dims))
    types = np.repeat(np.arange(n_types), n_per * n_batches)
    batches = np.tile(np.repeat(np.arange(n_batches), n_per), n_types)
    vectors = centres[types] + offsets[batches] + 0.25 * rng.normal(size=(len(types), dims))
    obs = pd.DataFrame(
        {"batch": pd.Categorical([f"b{b}" for b in batches]), "cell_type": [f"t{t}" for t in types]},
        index=[f"c{i}" for i in range(len(types))],
    )
    return ad.AnnData(X=np.zeros((len(types), 1), dtype=np.float32), obs=obs, obsm={"X_gv_cells": unit_rows(vectors)})


def test_offsets_are_removed_and_types_kept():
    cells = offset_cells()
    before = batch_mixing(cells.obsm["X_gv_cells"], cells.obs["batch"], cells.obs["cell_type"])
    gv.tl.batch_correct(cells, "batch", n_clusters=8, ridge=0.1, progress=False)  # a light, fixed penalty
    after = cells.obsm["X_gv_corrected"]
    assert after.dtype == np.float32 and after.shape == cells.obsm["X_gv_cells"].shape
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, rtol=1e-5)
    mixing = batch_mixing(after, cells.obs["batch"], cells.obs["cell_type"])
    assert before < 0.1 and mixing > 0.9, (before, mixing)
    default = gv.tl.batch_correct(cells, "batch", n_clusters=8, progress=False, copy=True).obsm["X_gv_corrected"]
    # the adaptive ridge shrinks offsets in proportion to the cells (docs/batch.md: 0.40 here)
    assert 0.3 < batch_mixing(default, cells.obs["batch"], cells.obs["cell_type"]) < mixing
    assert knn_accuracy(after, cells.obs["cell_type"].to_numpy(), k=15) == 1.0
    record = cells.uns["gv"]["X_gv_corrected"]
    assert record["kind"] == "batch_correction" and record["converged"]
    assert list(record["batches"]) == ["b0", "b1", "b2"] and len(record["mean_offset"]) == 3


def test_planted_batches_with_a_batch_specific_type():
    """Gene-specific capture, depth changes, a type in one batch only: mixed, types kept, ahead of the mean shift."""
    data = gv.datasets.synthetic(1500, 300, 4, seed=3, n_batches=2, batch_depth=0.5, batch_specific_types=1)
    assert set(data.obs.loc[data.obs["cell_type"] == "type0", "batch"]) == {"batch0"}
    gv.tl.coexpression(data, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(data, progress=False)
    gv.tl.cell_embed(data, layer="counts", progress=False)
    gv.tl.batch_correct(data, "batch", progress=False)
    batches, types = data.obs["batch"].to_numpy(), data.obs["cell_type"].to_numpy()
    raw, corrected = data.obsm["X_gv_cells"], data.obsm["X_gv_corrected"]
    shifted = raw.astype(np.float64).copy()  # genevector's correction: each batch onto batch0's mean
    for b in np.unique(batches):
        shifted[batches == b] += raw[batches == "batch0"].mean(axis=0) - raw[batches == b].mean(axis=0)
    mixing = batch_mixing(corrected, batches, types)
    assert batch_mixing(raw, batches, types) < 0.3
    assert mixing >= 0.65  # 2 batches, a quarter of batch0 in a type of its own (benchmarks/batch.py: 3 batches 0.83)
    assert mixing > batch_mixing(shifted, batches, types) + 0.3
    assert knn_accuracy(corrected, types, 15) >= 0.95 * knn_accuracy(raw, types, 15)


def test_reference_batch_stays_and_zero_cells_stay_zero():
    cells = offset_cells(n_per=40)
    cells.obsm["X_gv_cells"][:3] = 0.0
    gv.tl.batch_correct(cells, "batch", reference="b1", progress=False)
    out, start = cells.obsm["X_gv_corrected"], cells.obsm["X_gv_cells"]
    assert np.all(out[:3] == 0)
    in_reference = (cells.obs["batch"] == "b1").to_numpy()
    np.testing.assert_allclose(out[in_reference], start[in_reference], atol=1e-6)
    assert not np.allclose(out[~in_reference][3:], start[~in_reference][3:], atol=1e-3)
    assert cells.uns["gv"]["X_gv_corrected"]["params"]["reference"] == "b1"


def test_ridge_limits_and_determinism():
    cells = offset_cells(n_per=40, seed=2)
    vectors = np.asarray(cells.obsm["X_gv_cells"], dtype=np.float64)
    codes = cells.obs["batch"].cat.codes.to_numpy()
    frozen = soft_cluster_correct(vectors, codes, 3, n_clusters=8, ridge=1e12, max_rounds=2)
    np.testing.assert_allclose(frozen.vectors, vectors, atol=1e-6)  # an infinite penalty removes nothing
    assert frozen.assignments.shape == (8, len(vectors))
    np.testing.assert_allclose(frozen.assignments.sum(axis=0), 1.0, rtol=1e-6)  # float32
    one = gv.tl.batch_correct(cells, "batch", seed=4, progress=False, copy=True).obsm["X_gv_corrected"]
    two = gv.tl.batch_correct(cells, "batch", seed=4, progress=False, copy=True).obsm["X_gv_corrected"]
    np.testing.assert_array_equal(one, two)
    assert "X_gv_corrected" not in cells.obsm  # copy=True left the object alone


def test_round_trip_and_mudata(tmp_path):
    mudata = pytest.importorskip("mudata")
    cells = offset_cells(n_per=30)
    gv.tl.batch_correct(cells, "batch", progress=False)
    path = gv.io.write_h5ad(cells, tmp_path / "cells.h5ad")
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.obsm["X_gv_corrected"], cells.obsm["X_gv_corrected"])
    assert back.uns["gv"]["X_gv_corrected"]["params"]["batch_key"] == "batch"
    data = mudata.MuData({"rna": offset_cells(n_per=30)})
    gv.tl.batch_correct(data, "batch", mod="rna", progress=False)
    np.testing.assert_allclose(data["rna"].obsm["X_gv_corrected"], cells.obsm["X_gv_corrected"])


@pytest.mark.parametrize(
    ("change", "kwargs", "error", "match"),
    [
        (None, {"batch_key": "sample"}, KeyError, "No obs column 'sample'"),
        ("one_batch", {}, ValueError, "one batch only"),
        ("single_cell_batch", {}, ValueError, r"single cell.*merge"),
        ("missing_label", {}, ValueError, "without a batch"),
        ("nan", {}, ValueError, "NaN or infinite values in 1 cells"),
        ("empty_batch", {}, ValueError, r"\['b2'\] have fewer than 2 cells with a nonzero vector"),
        (None, {"reference": "b9"}, KeyError, "reference 'b9'"),
        (None, {"cells_key": "X_none"}, KeyError, "cell_embed"),
        (None, {"ridge": 0}, ValueError, "ridge"),
        (None, {"theta": -1}, ValueError, "theta"),
        (None, {"n_clusters": 10_000}, ValueError, "n_clusters"),
    ],
)
def test_bad_input_names_the_fix_and_leaves_the_object(change, kwargs, error, match):
    cells = offset_cells(n_per=20)
    if change == "one_batch":
        cells.obs["batch"] = "b0"
    elif change == "single_cell_batch":
        cells.obs["batch"] = cells.obs["batch"].astype(str)
        cells.obs.iloc[0, cells.obs.columns.get_loc("batch")] = "lonely"
    elif change == "missing_label":
        cells.obs["batch"] = cells.obs["batch"].astype(object)
        cells.obs.iloc[0, cells.obs.columns.get_loc("batch")] = None
    elif change == "nan":
        cells.obsm["X_gv_cells"][5, 0] = np.nan
    elif change == "empty_batch":  # every cell of b2 without a vector (nothing expressed)
        cells.obsm["X_gv_cells"][(cells.obs["batch"] == "b2").to_numpy()] = 0.0
    before = cells.copy()
    arguments = {"batch_key": "batch", **kwargs}
    with pytest.raises(error, match=match):
        gv.tl.batch_correct(cells, arguments.pop("batch_key"), progress=False, **arguments)
    assert set(cells.obsm) == set(before.obsm) and set(cells.uns) == set(before.uns)


def test_batch_mixing_known_answers():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(600, 5))
    random_batches = rng.integers(0, 3, 600)
    assert batch_mixing(points, random_batches, k=15) == pytest.approx(1.0, abs=0.06)  # no structure: mixed
    apart = points + 50 * random_batches[:, None]
    assert batch_mixing(apart, random_batches, k=15) == 0.0
    # a type found in one batch only is left out: the rest mixes perfectly
    types = np.where(random_batches == 2, "only_in_2", "shared")
    types[:300] = np.where(random_batches[:300] == 2, "shared", types[:300])
    mixed_shared = np.where((types == "shared")[:, None], points, points + 50)
    value = batch_mixing(mixed_shared, random_batches, types, k=15)
    assert value == pytest.approx(1.0, abs=0.08)
    with pytest.raises(ValueError, match="No cell type is present in two batches"):
        batch_mixing(points, random_batches, random_batches.astype(str))
    with pytest.raises(ValueError, match="one entry per cell"):
        batch_mixing(points, random_batches[:10])
    labels = random_batches.astype(object)
    labels[3] = None
    with pytest.raises(ValueError, match="1 missing values"):
        batch_mixing(points, labels)
    with pytest.raises(ValueError, match="1 missing values"):
        knn_accuracy(points, labels)


def test_coexpression_within_batches_is_the_weighted_mean_of_the_batches(adata):
    adata.obs["batch"] = pd.Categorical(np.where(np.arange(adata.n_obs) < 100, "a", "b"))
    gv.tl.coexpression(adata, "pearson", batch_key="batch", progress=False, use_cache=False)
    pooled = adata.varp["gv_pearson"]
    parts = []
    for name, n in (("a", 100), ("b", adata.n_obs - 100)):
        part = adata[adata.obs["batch"] == name].copy()
        gv.tl.coexpression(part, "pearson", progress=False, use_cache=False)
        parts.append(np.asarray(part.varp["gv_pearson"], dtype=np.float64) * n)
    np.testing.assert_allclose(pooled, sum(parts) / adata.n_obs, rtol=1e-5, atol=1e-6)
    record = adata.uns["gv"]["gv_pearson"]
    assert record["batch_key"] == "batch" and list(record["batches"]) == ["a", "b"]
    assert list(record["batch_cells"]) == [100, adata.n_obs - 100] and record["n_cells"] == adata.n_obs
    again = adata.copy()
    gv.tl.coexpression(again, "pearson", batch_key="batch", progress=False)  # each batch cached on its own
    gv.tl.coexpression(again, "pearson", batch_key="batch", progress=False)
    assert again.uns["gv"]["gv_pearson"]["from_cache"] and again.uns["gv"]["gv_pearson"]["cache_key"].count(",") == 1


def test_coexpression_within_batches_frees_cell_vectors_of_the_batch():
    """Planted capture and depth effects: within-batch MI gives cell vectors that already mix."""
    data = gv.datasets.synthetic(1500, 300, 4, seed=3, n_batches=2, batch_depth=0.5)
    batches, types = data.obs["batch"].to_numpy(), data.obs["cell_type"].to_numpy()
    mixing = {}
    for batch_key in (None, "batch"):
        cells = data.copy()
        gv.tl.coexpression(cells, layer="counts", batch_key=batch_key, progress=False, use_cache=False)
        gv.tl.embed(cells, progress=False)
        gv.tl.cell_embed(cells, layer="counts", progress=False)
        mixing[batch_key] = batch_mixing(cells.obsm["X_gv_cells"], batches, types)
        assert knn_accuracy(cells.obsm["X_gv_cells"], types, 15) > 0.9
    assert mixing["batch"] > mixing[None] + 0.2, mixing


def test_coexpression_batch_key_errors(adata):
    with pytest.raises(KeyError, match="No obs column 'sample'"):
        gv.tl.coexpression(adata, batch_key="sample", progress=False)
    adata.obs["one"] = "x"
    with pytest.raises(ValueError, match="one batch only"):
        gv.tl.coexpression(adata, batch_key="one", progress=False)
    adata.obs["batch"] = np.where(np.arange(adata.n_obs) % 2, "a", "b")
    adata.obsp["spatial_connectivities"] = sp.eye(adata.n_obs, format="csr")
    with pytest.raises(ValueError, match="graph target 'graph_xcorr'"):
        gv.tl.coexpression(adata, "graph_xcorr", batch_key="batch", progress=False)
    assert not adata.varp.keys()


def test_capture_factors_recover_planted_factors():
    """Known factors per batch and gene, a cluster found in one batch only: the shared clusters give them back."""
    from geneverse._core._capture import RowScaled, capture_factors
    from geneverse._core._chunks import CellChunks

    rng = np.random.default_rng(0)
    n_genes, n_batches = 30, 3
    clusters = np.repeat(np.arange(4), 300)
    batches = rng.integers(0, n_batches, size=len(clusters))
    batches[clusters == 3] = 2  # cluster 3 lives in batch 2 only: it must not pass for shared
    levels = rng.gamma(2.0, 20.0, size=(4, n_genes))
    factors = np.exp(rng.normal(0.0, 0.7, size=(n_batches, n_genes)))
    counts = rng.poisson(levels[clusters] * factors[batches])
    chunks = CellChunks(sp.csr_matrix(counts.astype(np.float64)), chunk_size=250)
    found, shared = capture_factors(chunks, batches, n_batches, clusters, 4, prior=1.0, reference=0)
    assert shared == 3
    np.testing.assert_allclose(found[0], 1.0)
    # up to one constant per batch (the size normalisation absorbs each batch's overall scale)
    truth = factors / factors[0]
    ratio = np.log(found) - np.log(truth)
    ratio -= ratio.mean(axis=1, keepdims=True)
    assert np.abs(ratio).max() < 0.1
    # no shared cluster: factors 1
    alone, none_shared = capture_factors(chunks, np.zeros_like(batches), n_batches, clusters, 4)
    assert none_shared == 0 and np.all(alone == 1.0)
    # 12 cells of batch 1 in cluster 0 (4% of it, against batch 1's 75% of all cells): under half its
    # share, so cluster 0 does not count as shared; without the share rule it does
    few = np.where(clusters == 0, 0, 1)
    few[np.flatnonzero(clusters == 0)[:12]] = 1
    assert capture_factors(chunks, few, 2, clusters, 4)[1] == 0
    assert capture_factors(chunks, few, 2, clusters, 4, share=0.0)[1] == 1
    # each cell's counts divided by its batch's factors, chunk by chunk
    scaled = np.vstack([c.toarray() for c in CellChunks(RowScaled(sp.csr_matrix(counts), batches, factors), 333)])
    np.testing.assert_allclose(scaled, counts / factors[batches])


def test_capture_correction_mixes_strong_capture_effects():
    """Strong gene-specific capture (log-sd 1): removing it from the counts mixes far more, types kept."""
    data = gv.datasets.synthetic(1500, 300, 4, seed=3, n_batches=3, batch_effect=1.0, batch_depth=0.5)
    gv.tl.coexpression(data, layer="counts", batch_key="batch", progress=False, use_cache=False)
    gv.tl.embed(data, progress=False)
    gv.tl.cell_embed(data, layer="counts", progress=False)
    counts = data.layers["counts"].copy()
    gv.tl.batch_correct(data, "batch", progress=False)
    gv.tl.batch_correct(data, "batch", capture=True, key_added="X_capture", progress=False)
    batches, types = data.obs["batch"].to_numpy(), data.obs["cell_type"].to_numpy()
    harmony_only = batch_mixing(data.obsm["X_gv_corrected"], batches, types)
    captured = batch_mixing(data.obsm["X_capture"], batches, types)
    assert captured > harmony_only + 0.1 and captured > 0.7, (captured, harmony_only)
    assert knn_accuracy(data.obsm["X_capture"], types, 15) >= 0.95 * knn_accuracy(data.obsm["X_gv_cells"], types, 15)
    record = data.uns["gv"]["X_capture"]
    assert record["params"]["capture"] and record["params"]["layer"] == "counts"
    assert list(record["capture"]["shared_clusters"]) and record["capture"]["log_factor_sd"].shape == (3,)
    assert (data.layers["counts"] != counts).nnz == 0  # the counts are read, never changed
    np.testing.assert_allclose(np.linalg.norm(data.obsm["X_capture"], axis=1), 1.0, atol=1e-5)


def test_capture_needs_the_cell_embedding_record_and_the_counts():
    cells = offset_cells(n_per=20)  # cell vectors without a cell_embed record
    before = cells.copy()
    with pytest.raises(KeyError, match="no cell_embed record"):
        gv.tl.batch_correct(cells, "batch", capture=True, progress=False)
    assert set(cells.obsm) == set(before.obsm) and set(cells.uns) == set(before.uns)
    data = gv.datasets.synthetic(300, 60, 3, seed=0, n_batches=2)
    gv.tl.coexpression(data, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(data, progress=False)
    gv.tl.cell_embed(data, layer="counts", progress=False)
    del data.layers["counts"]
    keys = set(data.obsm)
    with pytest.raises(KeyError, match=r"No layers\['counts'\]"):
        gv.tl.batch_correct(data, "batch", capture=True, progress=False)
    assert set(data.obsm) == keys


def test_capture_reference_stays_and_no_shared_cluster_warns():
    data = gv.datasets.synthetic(900, 120, 3, seed=1, n_batches=3, batch_effect=0.8)
    gv.tl.coexpression(data, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(data, progress=False)
    gv.tl.cell_embed(data, layer="counts", progress=False)
    gv.tl.batch_correct(data, "batch", capture=True, reference="batch0", key_added="X_ref", progress=False)
    in_reference = (data.obs["batch"] == "batch0").to_numpy()
    # the reference batch's factors are 1: its cells are embedded from their own counts, as before
    np.testing.assert_allclose(data.obsm["X_ref"][in_reference], data.obsm["X_gv_cells"][in_reference], atol=1e-5)
    assert not np.allclose(data.obsm["X_ref"][~in_reference], data.obsm["X_gv_cells"][~in_reference], atol=1e-3)
    # 40 cells in 2 batches and 10 clusters: no cluster holds 10 cells of both batches, so there is
    # nothing to fit the factors in; the soft-cluster correction is returned, with a warning
    small = gv.datasets.synthetic(40, 60, 3, seed=1, n_batches=2)
    gv.tl.coexpression(small, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(small, progress=False)
    gv.tl.cell_embed(small, layer="counts", progress=False)
    with pytest.warns(UserWarning, match="no cluster"):
        gv.tl.batch_correct(small, "batch", capture=True, key_added="X_small", progress=False)
    gv.tl.batch_correct(small, "batch", key_added="X_soft", progress=False)
    np.testing.assert_allclose(small.obsm["X_small"], small.obsm["X_soft"])
    assert not small.uns["gv"]["X_small"]["capture"]["applied"]
    with pytest.raises(ValueError, match="layer= is read by capture=True"):
        gv.tl.batch_correct(data, "batch", layer="counts", progress=False)
    with pytest.raises(TypeError, match="capture must be True or False"):
        gv.tl.batch_correct(data, "batch", capture="yes", progress=False)
