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
    gv.tl.coexpression(a, layer="counts", progress=False)
    plugin_kwargs = {"include_double_zeros": True}
    gv.tl.coexpression(a, layer="counts", target_kwargs=plugin_kwargs, key_added="plugin", progress=False)
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


@pytest.mark.parametrize("kwargs", [{"n_cells": 0}, {"n_programs": 50, "n_genes": 20}, {"dispersion": 0}])
def test_synthetic_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        gv.datasets.synthetic(**kwargs)
