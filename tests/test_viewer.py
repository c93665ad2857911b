"""The napari views: layouts and values without Qt, then the reader and the widget in a real viewer (Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

import geneverse as gv
from geneverse.viewer import _data, _layers

from ._tissue import SCALE, without

# ---------------------------------------------------------------- no Qt needed


def test_layout_places_cells_on_the_hires_image(tissue):
    layout = gv.viewer.spatial_layout(tissue)
    np.testing.assert_allclose(layout.coordinates, tissue.obsm["spatial"][:, ::-1] * SCALE)
    assert layout.image.shape == (600, 600, 3)
    assert (layout.resolution, layout.library_id) == ("hires", "synthetic")
    assert layout.point_size == pytest.approx(1.5 * SCALE)  # spot_diameter_fullres x scale factor
    # the painted image is darkest where program 0 is most active: the cells really sit on their tissue
    rows, cols = np.clip(layout.coordinates.astype(int), 0, 599).T
    brightness = layout.image[rows, cols].mean(axis=1)
    assert spearmanr(brightness, tissue.obsm["program_activity"][:, 0]).statistic < -0.5


def test_layout_without_image_and_with_lowres_only(tissue):
    bare = without(tissue)
    del bare.uns["spatial"]
    layout = gv.viewer.spatial_layout(bare)
    np.testing.assert_allclose(layout.coordinates, tissue.obsm["spatial"][:, ::-1])
    assert layout.image is None and layout.library_id is None
    assert 0 < layout.point_size < 10  # nearest-neighbour spacing of 600 cells on a 100 x 100 tissue

    low = without(tissue)
    entry = low.uns["spatial"]["synthetic"]
    entry["images"] = {"lowres": entry["images"]["hires"][::4, ::4]}
    entry["scalefactors"] = {"tissue_lowres_scalef": SCALE / 4}
    layout = gv.viewer.spatial_layout(low)
    assert layout.resolution == "lowres"
    np.testing.assert_allclose(layout.coordinates, tissue.obsm["spatial"][:, ::-1] * SCALE / 4)


def test_layout_shows_one_library_of_several(tissue):
    two = without(tissue)
    entry = two.uns["spatial"]["synthetic"]
    two.uns["spatial"] = {"a": entry, "b": entry}
    two.obs["library_id"] = np.where(np.arange(two.n_obs) % 3 == 0, "b", "a")
    layout = gv.viewer.spatial_layout(two, library_id="b")
    np.testing.assert_array_equal(layout.cells, np.arange(0, two.n_obs, 3))
    np.testing.assert_allclose(layout.coordinates, two.obsm["spatial"][::3, ::-1] * SCALE)
    with pytest.raises(KeyError, match="available: \\['a', 'b'\\]"):
        gv.viewer.spatial_layout(two, library_id="c")


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda a: a.obsm.pop("spatial"), ValueError, "No spatial coordinates: adata.obsm\\['spatial'\\]"),
        (lambda a: a.obsm.__setitem__("spatial", np.full((a.n_obs, 2), np.nan)), ValueError, "NaN"),
        (lambda a: a.obsm.__setitem__("spatial", np.zeros((a.n_obs, 1))), ValueError, "cells x 2"),
    ],
)
def test_layout_bad_coordinates(tissue, change, error, message):
    bad = without(tissue)
    change(bad)
    with pytest.raises(error, match=message):
        gv.viewer.spatial_layout(bad)


def test_values_genes_and_top_genes(tissue):
    scores = tissue.obsm["gv_programs"]
    np.testing.assert_array_equal(gv.viewer.program_values(tissue, "P0"), scores["P0"].to_numpy())
    gene = tissue.var_names[5]
    np.testing.assert_allclose(gv.viewer.gene_values(tissue, gene.upper()), tissue[:, gene].X.toarray().ravel())
    np.testing.assert_allclose(
        gv.viewer.gene_values(tissue, gene, layer="counts"), tissue[:, gene].layers["counts"].toarray().ravel()
    )
    assert gv.viewer.top_genes(tissue, "P0", 3) == list(tissue.uns["gv"]["gv_program"]["programs"]["P0"][:3])
    assert gv.viewer.top_genes(tissue, "nope") == []
    with pytest.raises(KeyError, match="Did you mean gene00110, gene00111, gene00112, gene00113, gene00114\\?"):
        gv.viewer.gene_values(tissue, "GENE0011")
    with pytest.raises(KeyError, match=r"not in adata\.var_names\. Did you mean gene00"):
        gv.viewer.gene_values(tissue, "gene0x005")
    with pytest.raises(KeyError, match="available"):
        gv.viewer.program_values(tissue, "P99")
    with pytest.raises(KeyError, match=r"run gv.tl.score_programs\(adata\)"):
        gv.viewer.program_values(without(tissue, scores=True), "P0")
    with pytest.raises(KeyError, match=r"run gv.tl.programs\(adata\) then"):
        gv.viewer.program_values(without(tissue, scores=True, programs=True), "P0")


def test_contrast_limits_are_robust():
    values = np.r_[np.linspace(0, 1, 199), 1000.0]  # one outlier must not wash the colours out
    low, high = _data.contrast_limits(values)
    assert (low, high) == pytest.approx(tuple(np.percentile(values, [1, 99])))
    assert 0 < low < 0.02 and 0.98 < high <= 1
    assert _data.contrast_limits(np.ones(5)) == (1.0, 2.0)
    assert _data.contrast_limits(np.array([np.nan])) == (0.0, 1.0)


def test_reader_claims_only_spatial_h5ad(tissue, tmp_path):
    good, flat, other = tmp_path / "tissue.h5ad", tmp_path / "flat.h5ad", tmp_path / "table.csv"
    tissue.write_h5ad(good)
    without(tissue, spatial=True).write_h5ad(flat)
    other.write_text("a,b\n")
    assert gv.viewer.napari_get_reader(str(flat)) is None
    assert gv.viewer.napari_get_reader(str(other)) is None
    assert gv.viewer.napari_get_reader([str(good), str(good)]) is None
    reader = gv.viewer.napari_get_reader([str(good)])
    (image, image_kwargs, image_kind), (points, kwargs, kind) = reader(str(good))
    assert (image_kind, kind) == ("image", "points")
    assert image_kwargs == {"name": "tissue tissue", "rgb": True} and image.shape == (600, 600, 3)
    np.testing.assert_allclose(points, tissue.obsm["spatial"][:, ::-1] * SCALE)
    assert list(kwargs["features"].columns[:4]) == ["P0", "P1", "P2", "P3"]
    assert kwargs["face_color"] == _layers.OVERLAY_FEATURE
    assert kwargs["metadata"]["adata"].n_obs == tissue.n_obs and kwargs["metadata"]["path"] == str(good)
