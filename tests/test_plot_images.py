"""Every ``gv.pl`` plot compared with a baseline image (as scanpy's ``check_same_image``).

The baselines in ``tests/_images/`` were drawn with the matplotlib pinned in the ``test`` extra.
After an intended change of a plot, regenerate them with ``make plot-baselines`` (which sets
``GENEVERSE_UPDATE_IMAGES=1``) and look at the new PNGs before committing them.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.testing.compare import compare_images

import geneverse as gv

IMAGES = Path(__file__).parent / "_images"
#: Plots whose layout is a UMAP: numba must compile it for a generic x86-64 CPU, as machine code
#: tuned to the host (AVX-512, FMA) rounds differently and a UMAP carries a tiny difference far. The
#: variable has to be set before numba loads (pytest plugins load it before any conftest), so
#: ``make test`` and ``make plot-baselines`` set it.
UMAP_PLOTS = {"gene_map", "cell_map", "batch_mixing"}
UPDATE = os.environ.get("GENEVERSE_UPDATE_IMAGES") == "1"
#: RMS difference (0-255 per channel) tolerated: rounding in the layouts, not a changed plot.
TOLERANCE = 2.0


def planted_vectors(adata) -> np.ndarray:
    """Gene vectors made from the planted programs with numpy's generator: the same bits on every machine.

    Trained vectors differ in their last bits between processors (BLAS and MKL kernels), and the maps
    (UMAP, force-directed layouts) carry such differences far; the plots are tested on these instead.
    """
    program = adata.var["program"].astype(str).to_numpy()
    rng = np.random.default_rng(0)
    vectors = rng.normal(scale=0.35, size=(adata.n_vars, 8))
    for p in range(3):
        vectors[program == f"P{p}", p] += 1.0
    return np.round(vectors, 3).astype(np.float32)


@pytest.fixture(scope="module")
def plotted():
    """One small deterministic pipeline whose every output is plotted."""
    adata = gv.datasets.synthetic(n_cells=300, n_genes=48, n_programs=3, spatial=True, seed=0)
    gv.tl.coexpression(adata, "pearson", layer="counts", use_cache=False, progress=False)
    gv.tl.embed(adata, "gv_pearson", n_components=8, epochs=60, seed=0, device="cpu", progress=False)
    adata.varm["X_gv"] = planted_vectors(adata)  # the loss curve stays the training's
    gv.tl.programs(adata, method="kmeans", n_clusters=3, seed=0)
    gv.tl.score_programs(adata, layer="counts", ctrl_size=5, n_bins=5, progress=False)
    gv.tl.cell_embed(adata, layer="counts", progress=False)
    # the cell basis: the program scores' first two principal axes (signs fixed), no stochastic layout
    scores = np.asarray(adata.obsm["gv_programs"], dtype=np.float64)
    centred = scores - scores.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
    adata.obsm["X_umap"] = centred @ axes[:2].T
    program = adata.var["program"].astype(str)
    markers = {f"type{p}": list(adata.var_names[(program == f"P{p}").to_numpy()][:4]) for p in range(3)}
    gv.tl.annotate(adata, markers, refine=False)  # the marker scores alone: no classifier fit behind the image
    gv.tl.gene_network(adata, n_neighbors=4)
    adata.obs["batch"] = ["b0", "b1", "b2"] * (adata.n_obs // 3)
    gv.tl.batch_correct(adata, "batch", progress=False)
    return adata


PLOTS = {
    "coexpression": lambda a, ax: gv.pl.coexpression(a, "gv_pearson", n_genes=16, ax=ax, show=False),
    "loss": lambda a, ax: gv.pl.loss(a, ax=ax, show=False),
    "gene_map": lambda a, ax: gv.pl.gene_map(a, method="umap", seed=0, ax=ax, show=False),
    "cell_map": lambda a, ax: gv.pl.cell_map(a, color="cell_type", seed=0, ax=ax, show=False),
    "similarity_heatmap": lambda a, ax: gv.pl.similarity_heatmap(a, programs=["P0", "P1"], ax=ax, show=False),
    "gene_network": lambda a, ax: gv.pl.gene_network(a, seed=0, ax=ax, show=False),
    "confusion": lambda a, ax: gv.pl.confusion(a, "cell_type", ax=ax, show=False),
}


def _check(figure, name: str, tmp_path: Path) -> None:
    if name in UMAP_PLOTS and os.environ.get("NUMBA_CPU_NAME") != "generic":
        plt.close(figure)
        pytest.fail(
            f"The {name} baseline is drawn with numba compiled for a generic CPU: run `make test`, or start "
            "pytest with NUMBA_CPU_NAME=generic in the environment."
        )
    figure.set_dpi(60)
    actual = tmp_path / f"{name}.png"
    figure.savefig(actual, dpi=60)
    plt.close(figure)
    expected = IMAGES / f"{name}.png"
    if UPDATE:
        expected.write_bytes(actual.read_bytes())
        return
    assert expected.exists(), f"no baseline {expected.name}: run `make plot-baselines`"
    difference = compare_images(str(expected), str(actual), tol=TOLERANCE)
    assert difference is None, difference


@pytest.mark.parametrize("name", list(PLOTS))
def test_plot_matches_its_baseline(plotted, name, tmp_path):
    with matplotlib.rc_context({"font.family": "DejaVu Sans"}):
        figure, ax = plt.subplots(figsize=(5, 4))
        returned = PLOTS[name](plotted, ax)
        assert returned is ax  # drawn into the axes it was given, and returned
        _check(figure, name, tmp_path)


def test_program_scores_panels_match_their_baseline(plotted, tmp_path):
    with matplotlib.rc_context({"font.family": "DejaVu Sans"}):
        axes = gv.pl.programs(plotted, show=False)
        assert axes.shape == (2, 3)  # UMAP row and tissue row, one column per program
        _check(axes[0, 0].figure, "programs", tmp_path)


def test_program_scores_draw_into_given_axes(plotted):
    figure, axes = plt.subplots(2, 2)
    returned = gv.pl.programs(plotted, ["P0", "P1"], ax=axes, show=False)  # UMAP row, tissue row
    assert returned.shape == (2, 2) and set(returned.ravel()) == set(axes.ravel())
    assert all(panel.collections for panel in axes.ravel())  # every panel got its points
    with pytest.raises(ValueError, match="need 4"):
        gv.pl.programs(plotted, ["P0", "P1"], ax=axes[0], show=False)
    plt.close(figure)


def test_cell_type_probabilities_match_their_baseline(plotted, tmp_path):
    with matplotlib.rc_context({"font.family": "DejaVu Sans"}):
        axes = gv.pl.cell_type_probabilities(plotted, basis="spatial", show=False)
        assert len(axes) == 3
        _check(axes[0].figure, "cell_type_probabilities", tmp_path)


def test_batch_mixing_matches_its_baseline(plotted, tmp_path):
    with matplotlib.rc_context({"font.family": "DejaVu Sans"}):
        axes = gv.pl.batch_mixing(plotted, "batch", label_key="cell_type", seed=0, show=False)
        assert len(axes) == 4
        _check(axes[0].figure, "batch_mixing", tmp_path)
