"""All-or-nothing under injected failures, caches under concurrency and full disks, round trips of every
output through h5ad / h5mu with the next step run on the reloaded object, and a deterministic demo."""

from __future__ import annotations

import errno
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import geneverse as gv

from ._fingerprint import changed, fingerprint


def fails_on_call(number: int, original):
    """Wrap ``original`` so that its ``number``-th call raises (a failure midway through a computation)."""
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == number:
            raise RuntimeError("injected failure")
        return original(*args, **kwargs)

    return wrapper


def pipeline_data():
    data = gv.datasets.synthetic(300, 40, 2, seed=0, genes_per_program=10)
    gv.tl.coexpression(data, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(data, n_components=5, epochs=20, progress=False)
    gv.tl.programs(data, method="kmeans", n_clusters=2)
    return data


INJECTIONS = [
    ("coexpression mi", "geneverse._core._mi.finish_mi", 2,
     lambda d: gv.tl.coexpression(d, layer="counts", key_added="again", use_cache=False, progress=False,
                                  target_kwargs={"block_size": 8, "n_jobs": 1})),
    ("coexpression pearson", "geneverse._core._gram._chunk_gram", 2,
     lambda d: gv.tl.coexpression(d, "pearson", chunk_size=50, key_added="again", use_cache=False, progress=False)),
    ("embed", "geneverse._core._embedding._check_finite", 5,
     lambda d: gv.tl.embed(d, n_components=5, epochs=20, key_added="again", progress=False)),
    ("programs", "geneverse._core._refine.program_correlations", 2,
     lambda d: gv.tl.programs(d, method="kmeans", n_clusters=2, key_added="again")),
    ("score_programs", "geneverse.tl._programs._gene_means", 1,
     lambda d: gv.tl.score_programs(d, key_added="again", progress=False)),
    ("cell_embed", "geneverse._core._cells.cell_weights", 2,
     lambda d: gv.tl.cell_embed(d, layer="counts", chunk_size=50, key_added="again", progress=False)),
    ("read_embeddings", "geneverse.io._embeddings._check_intervals" if False else "geneverse.io._embeddings._stack", 1,
     lambda d: gv.io.read_embeddings(d, {"gene00000": [1.0, 2.0]}, key_added="again")),
    ("clonotype graph", "geneverse.graphs._clonotype._clone_column", 1,
     lambda d: gv.graphs.build_clonotype_graph(d, "cell_type", key_added="again")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "target", "number", "call"), INJECTIONS, ids=[i[0] for i in INJECTIONS])
def test_failure_midway_leaves_no_partial_output(name, target, number, call, monkeypatch):
    data = pipeline_data()
    module_name, function = target.rsplit(".", 1)
    import importlib

    module = importlib.import_module(module_name)
    monkeypatch.setattr(module, function, fails_on_call(number, getattr(module, function)))
    before = fingerprint(data)
    with pytest.raises(RuntimeError, match="injected"):
        call(data)
    assert not changed(before, fingerprint(data)), name


def test_regions_train_failure_leaves_no_output(monkeypatch):
    universe, sets, metadata = gv.datasets.region_sets(n_labels=2, sets_per_label=4, universe_size=600, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tokens = gv.regions.tokenize(sets, universe, metadata=metadata)
    import geneverse._core._bedspace as bedspace

    monkeypatch.setattr(bedspace, "torch_sparse", fails_on_call(3, bedspace.torch_sparse))
    before = fingerprint(tokens)
    with pytest.raises(RuntimeError, match="injected"):
        gv.regions.train(tokens, "cell_type", epochs=3, progress=False)
    assert not changed(before, fingerprint(tokens))


WORKER = """
import sys
import numpy as np
import anndata
import geneverse
adata = anndata.read_h5ad(sys.argv[1])
geneverse.tl.coexpression(adata, layer="counts", progress=False)
np.save(sys.argv[2], np.asarray(adata.varp["gv_mi"]))
"""


def test_two_processes_share_the_cache(tmp_path):
    import os
    import subprocess
    import sys

    data = gv.datasets.synthetic(2000, 150, 3, seed=5)
    path = tmp_path / "d.h5ad"
    data.write_h5ad(path)
    cache_dir = tmp_path / "shared-cache"
    environment = {**os.environ, "GENEVERSE_CACHE_DIR": str(cache_dir)}
    outputs = [tmp_path / "first.npy", tmp_path / "second.npy"]
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(out)], env=environment) for out in outputs
    ]  # both start before either finishes: they compute and write the same entry at once
    assert [w.wait(timeout=300) for w in workers] == [0, 0]
    gv.tl.coexpression(data, layer="counts", use_cache=False, progress=False)
    for out in outputs:
        np.testing.assert_array_equal(np.load(out), data.varp["gv_mi"])
    entries = sorted(Path(cache_dir).glob("*.gvcache.npz"))
    assert len(entries) == 1 and not list(Path(cache_dir).glob("*.tmp"))
    os.environ["GENEVERSE_CACHE_DIR"] = str(cache_dir)
    try:
        again = ad.read_h5ad(path)
        gv.tl.coexpression(again, layer="counts", progress=False)
        assert again.uns["gv"]["gv_mi"]["from_cache"] is True  # the shared entry is valid
    finally:
        os.environ["GENEVERSE_CACHE_DIR"] = str(tmp_path / "gv-cache")


def test_full_disk_degrades_to_no_caching(adata, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gv.cache.np, "savez", disk_full)
    with pytest.warns(UserWarning, match="without caching"):
        gv.tl.coexpression(adata, "pearson", progress=False)
    assert gv.cache.entries() == []
    np.testing.assert_allclose(adata.varp["gv_pearson"], np.corrcoef(adata.X.toarray().T), atol=1e-6)


def test_every_output_survives_h5ad_and_the_next_step(tmp_path):
    data = gv.datasets.synthetic(400, 40, 2, seed=2, genes_per_program=10, spatial=True, n_clones=20)

    def reload(obj, name):
        path = tmp_path / f"{name}.h5ad"
        obj.write_h5ad(path)
        return ad.read_h5ad(path)

    gv.tl.coexpression(data, layer="counts", progress=False)
    data = reload(data, "coexpression")
    gv.tl.embed(data, n_components=5, epochs=30, progress=False)  # reads the reloaded varp
    data = reload(data, "embed")
    assert gv.tl.similar(data, data.var_names[0], n=3).shape[0] == 3
    gv.tl.programs(data, method="kmeans", n_clusters=2)
    data = reload(data, "programs")
    gv.tl.score_programs(data, progress=False)  # reads the reloaded program lists
    data = reload(data, "scores")
    assert isinstance(data.obsm["gv_programs"], pd.DataFrame)
    gv.tl.cell_embed(data, layer="counts", progress=False)
    data = reload(data, "cells")
    gv.graphs.build_clonotype_graph(data, "clone_id")
    data = reload(data, "graph")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gv.tl.coexpression(data, "graph_xcorr", layer="counts", target_kwargs={"graph": "clonotype_connectivities"},
                           progress=False)  # fmt: skip
    data = reload(data, "graph_xcorr")
    with pytest.warns(UserWarning):
        gv.io.read_embeddings(data, {data.var_names[0]: [1.0, 0.0], data.var_names[1]: [0.0, 1.0]}, key_added="X_in")
    data = reload(data, "imported")
    assert gv.tl.similar(data, data.var_names[0], vectors_key="X_in", n=1).gene[0] == data.var_names[1]
    assert data.uns["gv"]["X_in"]["n_missing"] == data.n_vars - 2
    for key in ("gv_mi", "X_gv", "gv_program", "gv_programs", "X_gv_cells", "clonotype", "gv_graph_xcorr"):
        assert key in data.uns["gv"], key


def test_mudata_outputs_survive_h5mu(tmp_path):
    mudata = pytest.importorskip("mudata")
    rna = gv.datasets.synthetic(300, 30, 2, seed=3, genes_per_program=8)
    mdata = mudata.MuData({"rna": rna})
    gv.tl.coexpression(mdata, layer="counts", mod="rna", progress=False)
    gv.tl.embed(mdata, n_components=4, epochs=20, mod="rna", progress=False)
    gv.tl.programs(mdata, method="kmeans", n_clusters=2, mod="rna")
    gv.tl.cell_embed(mdata, layer="counts", mod="rna", progress=False)
    path = tmp_path / "m.h5mu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata.write_h5mu(path)
        back = mudata.read_h5mu(path)
    np.testing.assert_array_equal(back["rna"].varm["X_gv"], mdata["rna"].varm["X_gv"])
    gv.tl.score_programs(back, mod="rna", progress=False)  # the next step on the reloaded MuData
    assert back["rna"].obsm["gv_programs"].shape == (300, 2)


def test_demo_is_deterministic(demo_result, tmp_path):
    from geneverse._demo import run_demo

    first = demo_result
    second = run_demo(tmp_path / "two", progress=False, use_cache=False)
    for name, path in first["paths"].items():
        if path.suffix in (".tsv", ".md", ".txt"):
            assert path.read_text() == second["paths"][name].read_text(), name
    one, two = ad.read_h5ad(first["paths"]["h5ad"]), ad.read_h5ad(second["paths"]["h5ad"])
    for key in ("gv_mi", "gv_genevector_mi", "gv_pearson"):
        np.testing.assert_array_equal(one.varp[key], two.varp[key])
    np.testing.assert_array_equal(one.varm["X_gv"], two.varm["X_gv"])
    np.testing.assert_array_equal(one.obsm["X_gv_cells"], two.obsm["X_gv_cells"])
    pd.testing.assert_frame_equal(one.obsm["gv_programs"], two.obsm["gv_programs"])
    assert sp.issparse(one.obsp["connectivities"])
