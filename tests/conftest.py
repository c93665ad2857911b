from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache directory."""
    directory = tmp_path / "gv-cache"
    monkeypatch.setenv("GENEVERSE_CACHE_DIR", str(directory))
    return directory


def make_counts(n_cells: int = 150, n_genes: int = 24, seed: int = 0) -> np.ndarray:
    """Overdispersed counts with ties, zeros and a few correlated gene pairs."""
    rng = np.random.default_rng(seed)
    latent = rng.gamma(1.0, 1.0, size=(n_cells, 3))
    loading = rng.integers(0, 3, size=n_genes)
    mean = 0.6 * latent[:, loading] * rng.uniform(0.3, 2.0, size=n_genes)
    counts = rng.poisson(mean).astype(np.float64)
    counts[rng.random(counts.shape) < 0.3] = 0
    return counts


@pytest.fixture
def counts() -> np.ndarray:
    return make_counts()


@pytest.fixture
def adata(counts) -> AnnData:
    a = AnnData(X=sp.csr_matrix(counts.astype(np.float32)))
    a.var_names = [f"g{i}" for i in range(a.n_vars)]
    a.obs_names = [f"c{i}" for i in range(a.n_obs)]
    a.layers["counts"] = a.X.copy()
    a.var["highly_variable"] = np.arange(a.n_vars) % 2 == 0
    return a


@pytest.fixture(scope="session")
def planted_types() -> AnnData:
    """Planted cell types type0..type3 (program genes P0..P3) with gene and cell vectors; copy before writing."""
    import geneverse as gv

    data = gv.datasets.synthetic(1500, 200, 4, seed=0, genes_per_program=20)
    gv.tl.coexpression(data, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(data, progress=False)
    gv.tl.cell_embed(data, layer="counts", progress=False)
    return data


@pytest.fixture(scope="session")
def pbmc():
    import geneverse as gv

    return gv.datasets.pbmc68k()


@pytest.fixture(scope="session")
def demo_result(tmp_path_factory):
    """One run of the demo (no cache), shared by the tests that check its outputs and its determinism."""
    from geneverse._demo import run_demo

    return run_demo(tmp_path_factory.mktemp("demo"), progress=False, use_cache=False)


@pytest.fixture(scope="session")
def tissue() -> AnnData:
    """Viewer tests: spatial cells with a tissue image, log-normalised, with geneverse programs and their scores."""
    import scanpy as sc

    import geneverse as gv

    adata = gv.datasets.synthetic(n_cells=600, n_genes=120, n_programs=3, spatial=True, tissue_image=True, seed=1)
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    gv.tl.coexpression(adata, layer="counts", use_cache=False, progress=False)
    gv.tl.embed(adata, n_components=8, progress=False)
    gv.tl.programs(adata, method="kmeans", n_clusters=4)
    gv.tl.score_programs(adata, progress=False)
    return adata
