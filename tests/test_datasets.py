"""Bundled and synthetic data: what they claim to hold."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import geneverse as gv
from geneverse.datasets._pbmc68k import rebuild_counts


def test_pbmc68k_counts_are_integral(pbmc):
    import scanpy as sc

    assert pbmc.shape == (700, 765)
    assert "bulk_labels" in pbmc.obs and pbmc.obs["bulk_labels"].nunique() == 10
    counts = pbmc.layers["counts"]
    assert sp.issparse(counts) and np.array_equal(counts.data, np.round(counts.data)) and counts.data.min() >= 1
    reduced = sc.datasets.pbmc68k_reduced()
    unrounded, largest = rebuild_counts(reduced.raw.X, reduced.obs["n_counts"].to_numpy())
    distance = np.abs(unrounded.data - np.round(unrounded.data))
    n_entries = np.prod(unrounded.shape)
    # the figures quoted in the docstring
    assert largest < 0.09
    assert 1 - (distance > 0.01).sum() / n_entries > 0.998
    assert 1 - (distance > 0.01).mean() > 0.994
    # X is the log-normalised data the counts came from
    np.testing.assert_allclose(pbmc.X.toarray(), reduced.raw.X.toarray(), rtol=1e-6)


def test_synthetic_truth_and_reproducibility():
    a = gv.datasets.synthetic(300, 60, 3, seed=1)
    b = gv.datasets.synthetic(300, 60, 3, seed=1)
    assert (a.X != b.X).nnz == 0
    assert a.var["program"].value_counts()[["P0", "P1", "P2"]].tolist() == [10, 10, 10]
    assert set(a.obs["cell_type"].cat.categories) == {"type0", "type1", "type2"}
    assert 0.02 < a.X.nnz / np.prod(a.shape) < 0.3
    c = gv.datasets.synthetic(300, 60, 3, seed=2)
    assert (a.X != c.X).nnz > 0


def test_synthetic_spatial_and_clones():
    a = gv.datasets.synthetic(400, 50, 4, seed=0, spatial=True, n_clones=20)
    assert a.obsm["spatial"].shape == (400, 2)
    clone_types = a.obs.groupby("clone_id", observed=True)["cell_type"].nunique()
    assert (clone_types == 1).all()  # clones nested in cell types
    # spatial fields are smooth: neighbours share program activity far more than random pairs
    from scipy.spatial import cKDTree

    _, neighbour = cKDTree(a.obsm["spatial"]).query(a.obsm["spatial"], k=2)
    act = a.obsm["program_activity"]
    near = np.abs(act - act[neighbour[:, 1]]).mean()
    far = np.abs(act - act[np.random.default_rng(0).permutation(400)]).mean()
    assert near < 0.5 * far


def test_planted_programs_are_recovered_by_mi():
    a = gv.datasets.synthetic(1500, 60, 3, seed=0, genes_per_program=10)
    gv.tl.coexpression(a, "genevector_mi", layer="counts", key_added="gv_mi", progress=False)
    gv.tl.coexpression(a, layer="counts", key_added="plugin", progress=False)  # the default mi: plug-in
    program = a.var["program"].to_numpy()
    planted = program != "none"
    same = (program[:, None] == program[None, :]) & planted[:, None] & ~np.eye(60, dtype=bool)
    other = (program[:, None] != program[None, :]) & planted[:, None] & planted[None, :]
    # GeneVector's estimator drops cells where both genes are zero, so genes of mutually exclusive
    # programs look strongly dependent; the sign of the correlation tells the two apart.
    mi = a.varp["gv_mi"]
    assert (mi[same] > 0).mean() > 0.95 and (mi[other] < 0).mean() > 0.75
    assert mi[same].mean() > 0.2 > 0 > mi[other].mean()
    # The plug-in estimator over all cells ranks within-program pairs far above the rest.
    plugin = np.abs(a.varp["plugin"])
    assert plugin[same].mean() > 3 * plugin[other].mean()
    signed_auc = (mi[same][:, None] > mi[other][None, :]).mean()
    assert signed_auc > 0.85  # measured 0.88; between-program pairs share size factors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_cells": 0}, "n_cells"),
        ({"n_programs": 50, "n_genes": 20}, "genes_per_program"),
        ({"dispersion": 0}, "positive"),
        ({"kind": "spatial"}, "Unknown kind"),
        ({"overlap": 1.5}, "overlap"),
        ({"rare_programs": 5, "n_programs": 5}, "rare_programs"),
        ({"rare_programs": 1, "spatial": True}, "spatial=False"),
        ({"n_batches": 0}, "n_batches"),
        ({"batch_effect": -1.0}, "batch_effect"),
    ],
)
def test_synthetic_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gv.datasets.synthetic(**kwargs)


def test_synthetic_bulk_overlap_rare_and_batches():
    bulk = gv.datasets.synthetic(200, 400, 5, kind="bulk", seed=0)
    assert isinstance(bulk.X, np.ndarray) and (bulk.X > 0).mean() > 0.8  # dense, mostly nonzero
    levels = bulk.var["base_mean"]
    assert levels.max() / levels.min() > 1e4 and bulk.uns["synthetic"]["kind"] == "bulk"
    # tissue programs: a program gene is highest in the samples of its own tissue
    gene = bulk.var_names[bulk.var["program"] == "P2"][0]
    by_type = bulk.to_df()[gene].groupby(bulk.obs["cell_type"], observed=True).mean()
    assert by_type.idxmax() == "type2"

    a = gv.datasets.synthetic(3000, 200, 4, seed=0, genes_per_program=20, overlap=0.25, rare_programs=1)
    shared = a.var["second_program"] != "none"
    assert shared.sum() == 4 * 5  # 25% of each program's 20 genes
    pairs = set(zip(a.var["program"][shared].astype(str), a.var["second_program"][shared].astype(str), strict=True))
    assert pairs == {("P0", "P1"), ("P1", "P2"), ("P2", "P3"), ("P3", "P0")}
    # a shared gene follows both programs: high in both cell types
    counts = a.layers["counts"].toarray()
    gene = np.flatnonzero((a.var["program"] == "P0") & (a.var["second_program"] == "P1"))[0]
    means = {t: counts[(a.obs["cell_type"] == t).to_numpy(), gene].mean() for t in ("type0", "type1", "type2")}
    assert means["type0"] > 2 * means["type2"] and means["type1"] > 2 * means["type2"]
    rare = (a.obs["cell_type"] == "type3").sum()
    assert 15 <= rare <= 50  # 1% of 3,000 cells

    b = gv.datasets.synthetic(600, 100, 2, seed=0, n_batches=3, batch_effect=1.0)
    assert b.obs["batch"].nunique() == 3
    none = gv.datasets.synthetic(600, 100, 2, seed=0)

    def spread(data, groups):  # how differently the groups' gene means sit, on a log scale
        means = [data.layers["counts"][(groups == k)].mean(axis=0) for k in np.unique(groups)]
        return float(np.std(np.log(np.vstack(means) + 0.05), axis=0).mean())

    batches = b.obs["batch"].cat.codes.to_numpy()
    assert spread(b, batches) > 2 * spread(none, batches)  # each batch scales the genes its own way
    # the default setting draws exactly what it drew before these options existed
    assert gv.datasets.synthetic(300, 60, 3, seed=1).uns["synthetic"]["n_batches"] == 1
