"""Helpers of the viewer tests (the ``tissue`` fixture itself is in conftest.py)."""

from __future__ import annotations

from anndata import AnnData

SCALE = 6.0  # synthetic(tissue_image=True) stores tissue_hires_scalef = 6


def without(adata: AnnData, *, scores: bool = False, programs: bool = False, spatial: bool = False) -> AnnData:
    out = adata.copy()
    if scores:
        del out.obsm["gv_programs"]
        out.uns["gv"] = {k: v for k, v in out.uns["gv"].items() if k != "gv_programs"}
    if programs:
        out.uns["gv"] = {k: v for k, v in out.uns["gv"].items() if k != "gv_program"}
    if spatial:
        del out.obsm["spatial"]
    return out
