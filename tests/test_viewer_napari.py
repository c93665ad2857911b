"""The napari reader, widget and view in a real viewer, under a virtual X server (pytest-xvfb)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import geneverse as gv
from geneverse.viewer import _data

from ._tissue import SCALE, without

napari = pytest.importorskip("napari", reason="the napari extra is not installed (pip install 'geneverse[napari]')")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed")
if not os.environ.get("DISPLAY"):
    pytest.skip("no X server: install Xvfb (make system-deps) so pytest-xvfb can start one", allow_module_level=True)


def colormap_position(colors: np.ndarray, colormap: str = "viridis") -> np.ndarray:
    """Where each RGBA colour lies along the colormap (0..1): inverts the colour mapping."""
    from napari.utils.colormaps import ensure_colormap

    lut = ensure_colormap(colormap).map(np.linspace(0.0, 1.0, 512))[:, :3]
    distances = ((np.asarray(colors)[:, None, :3] - lut[None, :, :]) ** 2).sum(axis=2)
    return distances.argmin(axis=1) / 511.0


def expected_position(values: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    return np.clip((values - limits[0]) / (limits[1] - limits[0]), 0, 1)


def open_view(make_napari_viewer, adata, **kwargs):
    viewer = make_napari_viewer(show=True)
    gv.viewer.view(adata, viewer=viewer, **kwargs)
    return viewer, viewer.window.dock_widgets[gv.viewer._view.WIDGET_NAME]


def points_layer(viewer):
    return next(layer for layer in viewer.layers if isinstance(layer, napari.layers.Points))


def test_plugin_reader_opens_points_on_tissue(make_napari_viewer, tissue, tmp_path):
    path = tmp_path / "tissue.h5ad"
    tissue.write_h5ad(path)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="geneverse")
    image, points = viewer.layers
    assert isinstance(image, napari.layers.Image) and image.rgb and image.data.shape == (600, 600, 3)
    np.testing.assert_allclose(points.data, tissue.obsm["spatial"][:, ::-1] * SCALE)
    # every point lies on the image
    assert points.data.min() >= 0 and points.data.max() <= 600


def test_choosing_a_program_colours_points_by_its_scores(make_napari_viewer, tissue):
    _, widget = open_view(make_napari_viewer, tissue)
    layer = widget.layer
    assert widget._program.choices == ("P0", "P1", "P2", "P3")
    for program in ("P1", "P2"):
        widget._program.value = program
        scores = tissue.obsm["gv_programs"][program].to_numpy()
        limits = _data.contrast_limits(scores)
        assert layer.face_contrast_limits == pytest.approx(limits)
        position = colormap_position(layer.face_color)
        np.testing.assert_allclose(position, expected_position(scores, limits), atol=0.01)
        assert spearmanr(position, scores).statistic > 0.95
        assert widget._top_genes.value == ", ".join(tissue.uns["gv"]["gv_program"]["programs"][program][:10])
    widget._colormap.value = "magma"
    assert spearmanr(colormap_position(layer.face_color, "magma"), scores).statistic > 0.95


def test_manual_contrast_limits(make_napari_viewer, tissue):
    _viewer, widget = open_view(make_napari_viewer, tissue)
    widget._program.value = "P0"
    scores = tissue.obsm["gv_programs"]["P0"].to_numpy()
    widget._auto_contrast.value = False
    assert widget._contrast.enabled
    middle = float(np.median(scores))
    widget._contrast.value = (middle, middle + 1e-3)
    position = colormap_position(widget.layer.face_color)
    # a step at the median: about half the cells at each end of the colormap
    assert np.mean(position < 0.05) == pytest.approx(0.5, abs=0.05)
    assert np.mean(position > 0.95) == pytest.approx(0.5, abs=0.05)


def test_screenshots_show_the_overlay_and_differ_between_programs(make_napari_viewer, tissue, qtbot):
    viewer, widget = open_view(make_napari_viewer, tissue)
    widget._program.value = "P0"
    first = viewer.screenshot(canvas_only=True, flash=False)
    widget._program.value = "P1"
    second = viewer.screenshot(canvas_only=True, flash=False)
    assert first.shape == second.shape and first.ndim == 3
    assert first[..., :3].std() > 20  # not blank
    changed = np.abs(first[..., :3].astype(int) - second[..., :3]).max(axis=-1) > 40
    assert changed.mean() > 0.01  # the points (a few % of the canvas) changed colour; the tissue did not


def test_gene_search(make_napari_viewer, tissue):
    _viewer, widget = open_view(make_napari_viewer, tissue)
    gene = tissue.var_names[7]
    widget._gene.value = gene.upper()  # case-insensitive exact match shows it while typing
    assert widget._kind.value == "gene" and widget.layer.metadata["shown"] == ("gene", gene)
    expression = tissue[:, gene].X.toarray().ravel()
    position = colormap_position(widget.layer.face_color)
    np.testing.assert_allclose(position, expected_position(expression, _data.contrast_limits(expression)), atol=0.01)
    widget._gene.value = "gene0007"
    widget.show_current()  # what Enter does
    assert "Did you mean gene00070" in widget.message
    assert widget.layer.metadata["shown"] == ("gene", gene)  # the last good view stays


def test_bad_files_give_a_message_not_a_crash(make_napari_viewer, tissue, tmp_path):
    flat, garbage, unscored = tmp_path / "flat.h5ad", tmp_path / "garbage.h5ad", tmp_path / "unscored.h5ad"
    without(tissue, spatial=True).write_h5ad(flat)
    garbage.write_bytes(b"not an h5ad file")
    without(tissue, scores=True, programs=True).write_h5ad(unscored)
    viewer = make_napari_viewer()
    widget = gv.viewer.ProgramWidget(viewer)
    assert "Open an .h5ad file" in widget.message
    widget.open(flat)
    assert "Cannot show flat.h5ad" in widget.message and "obsm['spatial']" in widget.message
    widget.open(garbage)
    assert "Cannot show garbage.h5ad" in widget.message
    assert len(viewer.layers) == 0
    widget._open.value = unscored  # through the file picker
    assert len(viewer.layers) == 2
    assert "No program scores" in widget.message and "gv.tl.score_programs" in widget.message
    assert widget._kind.value == "gene" and widget._score.native.isHidden()
    widget._gene.value = tissue.var_names[0]
    assert widget.layer.metadata["shown"] == ("gene", tissue.var_names[0])


def test_unscored_programs_are_scored_in_a_worker(make_napari_viewer, tissue, qtbot):
    unscored = without(tissue, scores=True)
    _viewer, widget = open_view(make_napari_viewer, unscored)
    assert not widget._score.native.isHidden() and "Score programs" in widget.message
    worker = widget.score_programs()
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: widget._program.choices == ("P0", "P1", "P2", "P3"), timeout=10_000)
    pd.testing.assert_frame_equal(unscored.obsm["gv_programs"], tissue.obsm["gv_programs"])
    assert unscored.uns["gv"]["gv_programs"]["kind"] == "program_scores"
    assert "P0" in widget.layer.features.columns
    assert widget.layer.metadata["shown"][0] == "program"


def test_keep_as_layer_and_side_by_side(make_napari_viewer, tissue):
    viewer, widget = open_view(make_napari_viewer, tissue)
    widget._program.value = "P0"
    original = widget.layer
    kept = widget.keep_as_layer()
    assert len(viewer.layers) == 4 and kept.name == "cells P0"
    assert viewer.layers[-2].name == "cells P0 tissue"
    widget._program.value = "P2"
    # the kept layer still shows P0, the original now P2
    p0 = tissue.obsm["gv_programs"]["P0"].to_numpy()
    assert spearmanr(colormap_position(kept.face_color), p0).statistic > 0.95
    assert widget.layer is original and original.metadata["shown"] == ("program", "P2")
    widget._side_by_side.value = True
    grid = gv.viewer._widget.viewer_grid(viewer)
    assert grid.enabled and grid.stride == 2
    assert [name for name, _ in widget._geneverse_layers()] == ["cells", "cells P0"]


def test_view_checks_before_opening_and_takes_mudata(make_napari_viewer, tissue, tmp_path):
    with pytest.raises(ValueError, match="No spatial coordinates"):
        gv.viewer.view(without(tissue, spatial=True), show=False)
    with pytest.raises(FileNotFoundError):
        gv.viewer.view(tmp_path / "missing.h5ad", show=False)
    mudata = pytest.importorskip("mudata")
    viewer, widget = open_view(make_napari_viewer, mudata.MuData({"rna": tissue.copy()}), mod="rna")
    assert widget.adata.n_obs == tissue.n_obs
    assert points_layer(viewer).metadata["shown"] == ("program", "P0")


def test_cli_view(tmp_path, capsys):
    from geneverse.cli import build_parser, main

    assert "view" in build_parser().format_help()
    assert main(["view", str(tmp_path / "missing.h5ad")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_cell_types_and_their_probabilities(make_napari_viewer, tissue):
    annotated = tissue.copy()
    markers = {f"type{p}": list(annotated.var_names[annotated.var["program"] == f"P{p}"][:5]) for p in range(3)}
    gv.tl.cell_embed(annotated, layer="counts", progress=False)
    gv.tl.annotate(annotated, markers, min_probability=0.6)
    annotated.obs.iloc[:5, annotated.obs.columns.get_loc("gv_cell_type")] = "unassigned"  # some for sure
    _viewer, widget = open_view(make_napari_viewer, annotated)
    assert widget._cell_type.choices == ("all types", "type0", "type1", "type2")
    widget._kind.value = "cell type"  # the type list starts at "all types"
    assert widget.layer.metadata["shown"] == ("cell type", "all types")
    labels = annotated.obs["gv_cell_type"].astype(str).to_numpy()
    colours = np.asarray(widget.layer.face_color)[:, :3]
    for label in np.unique(labels):  # one colour per type, and different types differ
        assert np.ptp(colours[labels == label], axis=0).max() < 1e-6, label
    assert len({tuple(np.round(colours[labels == label][0], 3)) for label in np.unique(labels)}) == len(
        np.unique(labels)
    )
    np.testing.assert_allclose(colours[labels == "unassigned"][0], [0xBD / 255] * 3, atol=1e-3)
    widget._kind.value = "gene"
    widget._cell_type.value = "type1"  # choosing a type switches the view to cell types
    assert widget._kind.value == "cell type"
    probability = annotated.obsm["gv_cell_type_probabilities"]["type1"].to_numpy()
    position = colormap_position(widget.layer.face_color)
    np.testing.assert_allclose(position, expected_position(probability, _data.contrast_limits(probability)), atol=0.01)
    widget._kind.value = "program"  # back to a program: a colormap again
    widget._program.value = "P1"
    assert spearmanr(colormap_position(widget.layer.face_color), annotated.obsm["gv_programs"]["P1"]).statistic > 0.95


def test_cell_type_view_without_annotation_says_how(make_napari_viewer, tissue):
    _viewer, widget = open_view(make_napari_viewer, tissue)
    assert widget._cell_type.choices == ()
    widget._kind.value = "cell type"
    assert "gv.tl.annotate" in widget.message
