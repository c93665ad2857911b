"""Plots produce images."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import geneverse as gv


def test_coexpression_heatmap_png(adata, tmp_path):
    gv.tl.coexpression(adata, progress=False)
    path = tmp_path / "heat.png"
    ax = gv.pl.coexpression(adata, "gv_mi", n_genes=10, show=False, save=path)
    assert ax is not None and len(ax.get_xticklabels()) == 10
    image = plt.imread(path)
    assert image.shape[0] > 100 and image[..., :3].std() > 0.05  # a real picture, not a blank canvas
    plt.close("all")


def test_heatmap_with_genes_and_into_given_axes(adata):
    gv.tl.coexpression(adata, "pearson", progress=False)
    fig, ax = plt.subplots()
    out = gv.pl.coexpression(adata, "gv_pearson", genes=["g1", "g2", "g3"], ax=ax, cluster=False, show=False)
    assert out is ax and [t.get_text() for t in ax.get_yticklabels()] == ["g1", "g2", "g3"]
    values = ax.images[0].get_array()
    np.testing.assert_allclose(values, np.corrcoef(adata[:, ["g1", "g2", "g3"]].X.toarray().T), atol=1e-6)
    plt.close(fig)


def test_heatmap_errors(adata):
    with pytest.raises(KeyError, match=r"run `gv\.tl\.coexpression"):
        gv.pl.coexpression(adata, "gv_mi")
    gv.tl.coexpression(adata, progress=False)
    with pytest.raises(KeyError, match="BRCA1"):
        gv.pl.coexpression(adata, genes=["BRCA1"])


@pytest.fixture
def typed_cells():
    """Cells with annotate's probabilities, a UMAP-like basis, spatial coordinates and two batches."""
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 120
    truth = np.repeat(["A", "B", "C"], n // 3)
    probabilities = pd.DataFrame(
        rng.dirichlet([1, 1, 1], size=n), columns=["A", "B", "C"], index=[f"c{i}" for i in range(n)]
    )
    assigned = np.where(np.arange(n) % 10 == 0, "unassigned", truth)
    vectors = rng.normal(size=(n, 6)) + 4 * np.eye(6)[np.repeat([0, 1, 2], n // 3)]
    cells = ad.AnnData(
        X=np.zeros((n, 1), dtype=np.float32),
        obs=pd.DataFrame(
            {"truth": truth, "gv_cell_type": pd.Categorical(assigned), "batch": np.tile(["b0", "b1"], n // 2)},
            index=probabilities.index,
        ),
        obsm={
            "gv_cell_type_probabilities": probabilities,
            "X_umap": rng.normal(size=(n, 2)),
            "spatial": rng.uniform(0, 100, size=(n, 2)),
            "X_gv_cells": vectors + 3.0 * np.eye(6)[np.tile([0, 1], n // 2)],  # batches apart
            "X_gv_corrected": vectors,
        },
    )
    return cells


def test_cell_type_probabilities_panels(typed_cells, tmp_path):
    axes = gv.pl.cell_type_probabilities(typed_cells, show=False, save=tmp_path / "p.png")
    assert [ax.get_title() for ax in axes] == ["A", "B", "C"]
    np.testing.assert_allclose(
        axes[1].collections[0].get_array(), typed_cells.obsm["gv_cell_type_probabilities"]["B"].to_numpy()
    )
    assert plt.imread(tmp_path / "p.png")[..., :3].std() > 0.05
    plt.close("all")
    axes = gv.pl.cell_type_probabilities(typed_cells, basis="spatial", types=["C"], show=False)
    assert len(axes) == 1 and axes[0].yaxis_inverted()
    plt.close("all")
    with pytest.raises(KeyError, match="not in obsm"):
        gv.pl.cell_type_probabilities(typed_cells, types=["Z"], show=False)
    with pytest.raises(KeyError, match=r"sc\.tl\.umap"):
        gv.pl.cell_type_probabilities(typed_cells, basis="tsne", show=False)
    with pytest.raises(KeyError, match="annotate"):
        gv.pl.cell_type_probabilities(typed_cells, key="other", show=False)


def test_confusion_counts_and_shares(typed_cells):
    import pandas as pd

    ax = gv.pl.confusion(typed_cells, "truth", show=False)
    table = pd.crosstab(typed_cells.obs["truth"], typed_cells.obs["gv_cell_type"].astype(str))
    np.testing.assert_allclose(ax.images[0].get_array(), table.div(table.sum(axis=1), axis=0).to_numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "B", "C", "unassigned"]
    assert "90%" in ax.get_title()
    plt.close("all")
    ax = gv.pl.confusion(typed_cells, "truth", normalize=False, show=False)
    np.testing.assert_array_equal(ax.images[0].get_array(), table.to_numpy())
    plt.close("all")
    with pytest.raises(KeyError, match="No obs column 'label'"):
        gv.pl.confusion(typed_cells, "label", show=False)


def test_batch_mixing_maps(typed_cells, tmp_path):
    axes = gv.pl.batch_mixing(typed_cells, "batch", label_key="truth", show=False, save=tmp_path / "m.png")
    assert len(axes) == 4
    assert axes[0].get_title().startswith("X_gv_cells: mixing") and axes[3].get_title() == "X_gv_corrected: truth"
    scores = [
        gv.bench.batch_mixing(typed_cells.obsm[key], typed_cells.obs["batch"], typed_cells.obs["truth"])
        for key in ("X_gv_cells", "X_gv_corrected")
    ]
    assert scores[0] < 0.5 < scores[1]
    assert axes[0].get_title() == f"X_gv_cells: mixing {scores[0]:.2f}"
    assert axes[1].get_title() == f"X_gv_corrected: mixing {scores[1]:.2f}"
    plt.close("all")
    with pytest.raises(KeyError, match="cell_embed"):
        gv.pl.batch_mixing(typed_cells, "batch", keys=["X_none"], show=False)
    del typed_cells.obsm["X_gv_corrected"]
    with pytest.raises(KeyError, match=r"gv\.tl\.batch_correct"):
        gv.pl.batch_mixing(typed_cells, "batch", show=False)
    with pytest.raises(ValueError, match="umap"):
        gv.pl.batch_mixing(typed_cells, "batch", keys=["X_gv_cells"], method="pca", show=False)
    assert not plt.get_fignums()  # no figure left behind by a failure
