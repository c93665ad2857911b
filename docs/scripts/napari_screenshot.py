"""Make the napari screenshot shown in the README: ``make docs-screenshot`` (runs under xvfb-run).

A synthetic tissue with an H&E-like image, geneverse programs and their scores, opened with
``gv.viewer.view``; one program is chosen in the widget and the whole window is captured.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import scanpy as sc

import geneverse as gv

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1] / "img" / "napari_programs.png")


def main() -> None:
    """Build the data, open the view, pick a program and save the window."""
    from napari.qt import get_qapp

    warnings.filterwarnings("ignore")
    adata = gv.datasets.synthetic(2000, 200, 4, seed=0, spatial=True, tissue_image=True)
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    gv.tl.coexpression(adata, layer="counts", target_kwargs={"include_double_zeros": True}, progress=False)
    gv.tl.embed(adata, n_components=20, progress=False)
    gv.tl.programs(adata, method="kmeans", n_clusters=5)
    gv.tl.score_programs(adata, progress=False)
    viewer = gv.viewer.view(adata, show=True)
    viewer.window._qt_window.resize(1400, 850)
    widget = viewer.window.dock_widgets["geneverse programs"]
    # the program that best follows a planted field makes the clearest picture
    program = max(adata.obsm["gv_programs"], key=lambda p: adata.obsm["gv_programs"][p].std())
    widget._program.value = program
    widget._colormap.value = "magma"
    app = get_qapp()
    for _ in range(20):  # let the dock and canvas draw before the full-window capture
        app.processEvents()
    viewer.reset_view()
    app.processEvents()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(OUT), canvas_only=False, flash=False)
    viewer.close()
    print(f"wrote {OUT} ({program})")


if __name__ == "__main__":
    main()
