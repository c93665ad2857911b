"""Out-of-core and distributed runs equal the in-memory ones: backed h5ad, dask arrays, a LocalCluster."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData, read_h5ad

import geneverse as gv

da = pytest.importorskip("dask.array", reason="the dask extra is not installed")
distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

TARGETS = ["mi", "pearson", "spearman", "jaccard", "cooccurrence"]


@pytest.fixture(scope="module")
def counts() -> AnnData:
    """Counts with planted programs, gene vectors and programs, all computed in memory."""
    adata = gv.datasets.synthetic(n_cells=640, n_genes=60, n_programs=3, seed=4)
    gv.tl.coexpression(adata, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(adata, n_components=8, progress=False)
    gv.tl.programs(adata, method="kmeans", n_clusters=3)
    return adata


@pytest.fixture(scope="module")
def cluster():
    """A real two-worker cluster (separate processes: everything sent to workers is pickled)."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as local,
        distributed.Client(local) as client,
    ):
        yield client


def on_disk(adata: AnnData, tmp_path) -> str:
    path = tmp_path / "counts.h5ad"
    AnnData(X=adata.layers["counts"], obs=adata.obs[[]], var=adata.var[[]]).write_h5ad(path)
    return str(path)


def lazy_x(path: str, rows: int):
    """The file's X as a dask array of CSR blocks that workers read from disk themselves."""
    from anndata.experimental import read_elem_lazy

    return read_elem_lazy(h5py.File(path, "r")["X"], chunks=(rows, -1))


def with_x(adata: AnnData, X) -> AnnData:
    out = AnnData(X=X, obs=adata.obs[[]].copy(), var=adata.var[[]].copy())
    out.varm["X_gv"] = adata.varm["X_gv"]
    out.uns["gv"] = {"gv_program": adata.uns["gv"]["gv_program"]}
    return out


def reference(adata: AnnData) -> dict:
    """Every result computed in memory from the counts."""
    memory = with_x(adata, adata.layers["counts"])
    results = {}
    for target in TARGETS:
        gv.tl.coexpression(memory, target, key_added=target, progress=False, use_cache=False)
        results[target] = memory.varp[target]
    gv.tl.cell_embed(memory, progress=False)
    gv.tl.score_programs(memory, progress=False)
    results["cells"] = memory.obsm["X_gv_cells"]
    results["scores"] = memory.obsm["gv_programs"]
    return results


def assert_same(adata: AnnData, expected: dict, chunk_size: int) -> None:
    for target in TARGETS:
        gv.tl.coexpression(adata, target, key_added=target, chunk_size=chunk_size, progress=False, use_cache=False)
        np.testing.assert_allclose(adata.varp[target], expected[target], rtol=1e-5, atol=1e-6, err_msg=target)
    gv.tl.cell_embed(adata, chunk_size=chunk_size, progress=False)
    np.testing.assert_allclose(adata.obsm["X_gv_cells"], expected["cells"], atol=1e-6)
    gv.tl.score_programs(adata, chunk_size=chunk_size, progress=False)
    pd.testing.assert_frame_equal(adata.obsm["gv_programs"], expected["scores"], atol=1e-10)


def test_backed_h5ad_equals_memory(counts, tmp_path):
    expected = reference(counts)
    backed = read_h5ad(on_disk(counts, tmp_path), backed="r")
    backed.varm["X_gv"] = counts.varm["X_gv"]
    backed.uns["gv"] = {"gv_program": counts.uns["gv"]["gv_program"]}
    assert_same(backed, expected, chunk_size=97)  # chunks that do not divide the cells
    backed.file.close()


def test_dask_arrays_equal_memory_on_the_local_scheduler(counts, tmp_path):
    expected = reference(counts)
    in_memory_blocks = da.from_array(sp.csr_matrix(counts.layers["counts"]), chunks=(150, -1))
    assert_same(with_x(counts, in_memory_blocks), expected, chunk_size=1000)
    dense_blocks = da.from_array(counts.layers["counts"].toarray(), chunks=(200, 20))  # column chunks too
    assert_same(with_x(counts, dense_blocks), expected, chunk_size=1000)


def test_distributed_cluster_reading_the_file_equals_memory(counts, tmp_path, cluster):
    expected = reference(counts)
    lazy = with_x(counts, lazy_x(on_disk(counts, tmp_path), rows=128))
    with distributed.get_task_stream(client=cluster) as stream:
        assert_same(lazy, expected, chunk_size=1000)
    # the blocks were read and reduced on both workers, not in this process
    assert {task["worker"] for task in stream.data} == set(cluster.scheduler_info()["workers"])
    assert len(stream.data) > 5 * len(TARGETS)


def test_distributed_errors_name_the_problem(counts, cluster):
    broken = counts.layers["counts"].toarray()
    broken[300, 5] = np.nan  # in the third block only
    lazy = with_x(counts, da.from_array(broken, chunks=(128, -1)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        gv.tl.coexpression(lazy, progress=False, use_cache=False)
    assert "gv_mi" not in lazy.varp
    negative = counts.layers["counts"].toarray()
    negative[10, 0] = -1
    with pytest.raises(ValueError, match="negative values"):
        gv.tl.coexpression(with_x(counts, da.from_array(negative, chunks=(128, -1))), progress=False)


def test_dask_cache_keys(counts):
    blocks = da.from_array(sp.csr_matrix(counts.layers["counts"]), chunks=(150, -1))
    first = with_x(counts, blocks)
    gv.tl.coexpression(first, "pearson", progress=False)
    again = with_x(counts, blocks)
    gv.tl.coexpression(again, "pearson", progress=False)
    assert again.uns["gv"]["gv_pearson"]["from_cache"] is True
    assert again.uns["gv"]["gv_pearson"]["cache_key"] == first.uns["gv"]["gv_pearson"]["cache_key"]
    np.testing.assert_array_equal(again.varp["gv_pearson"], first.varp["gv_pearson"])
