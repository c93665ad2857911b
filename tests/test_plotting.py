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
