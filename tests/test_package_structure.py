"""Conventions as tests (scanpy's ``test_sig_conventions``), over every public namespace.

Each public function: at most 4 positional parameters (``analogy`` needs adata, a, b, c), every
parameter and the return annotated, every parameter documented under its exact name. Each tool
that writes (``copy=`` in its signature) takes ``adata`` first, keeps ``copy``, ``key_added``,
``layer`` and ``mod`` keyword-only, and leaves a ``uns['gv']`` record with the version and seconds.
"""

from __future__ import annotations

import inspect
import re
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

import geneverse as gv
from geneverse._keys import Key

PUBLIC_MODULES = ["tl", "pl", "io", "get", "bench", "graphs", "regions", "datasets", "viewer", "targets", "cache"]
MAX_POSITIONAL = 4


def public_functions():
    for module_name in PUBLIC_MODULES:
        module = getattr(gv, module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield f"{module_name}.{name}", obj


FUNCTIONS = list(public_functions())


def documented_parameters(doc: str) -> set[str]:
    """Names in the numpydoc Parameters section (``name``, ``name : type``, ``a, b``, ``**kwargs``)."""
    if "Parameters\n----------" not in doc:
        return set()
    section = doc.split("Parameters\n----------", 1)[1]
    section = re.split(r"\n(?:Returns|Yields|Raises|Examples|Notes|See Also|Warns)\n-+", section)[0]
    names = set()
    for line in section.splitlines():
        if line and not line[0].isspace():
            names |= {part.strip().lstrip("*") for part in line.split(" : ")[0].split(",")}
    return names


def test_public_modules():
    for name in PUBLIC_MODULES:
        assert hasattr(gv, name), name
    assert gv.__version__
    assert len(FUNCTIONS) > 60  # the scan found the API


@pytest.mark.parametrize(("name", "func"), FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_signature_and_docstring_conventions(name, func):
    signature = inspect.signature(func)
    parameters = [p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(positional) <= MAX_POSITIONAL, f"{name}: {len(positional)} positional parameters"
    unannotated = [p.name for p in parameters if p.annotation is inspect.Parameter.empty]
    assert not unannotated, f"{name}: parameters without annotation {unannotated}"
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: no return annotation"
    doc = inspect.getdoc(func)
    assert doc, f"{name}: no docstring"
    missing = [p.name for p in parameters if p.name not in documented_parameters(doc)]
    assert not missing, f"{name}: parameters not documented by their exact name: {missing}"
    if parameters:
        assert "Returns\n-------" in doc or signature.return_annotation in (None, "None"), f"{name}: no Returns"


WRITERS = [(name, func) for name, func in FUNCTIONS if "copy" in inspect.signature(func).parameters]


@pytest.mark.parametrize(("name", "func"), WRITERS, ids=[n for n, _ in WRITERS])
def test_writer_signatures(name, func):
    parameters = inspect.signature(func).parameters
    first = next(iter(parameters))
    assert first in ("adata", "sets"), f"{name}: the container comes first, got {first!r}"
    for keyword in ("copy", "key_added", "layer", "mod"):
        if keyword in parameters:
            assert parameters[keyword].kind is inspect.Parameter.KEYWORD_ONLY, f"{name}: {keyword} keyword-only"
    assert parameters["copy"].default is False


def _counts(n_cells: int = 80, n_genes: int = 16) -> AnnData:
    rng = np.random.default_rng(0)
    adata = AnnData(X=sp.csr_matrix(rng.poisson(1.5, size=(n_cells, n_genes)).astype(np.float32)))
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    adata.obs_names = [f"c{i}" for i in range(n_cells)]
    adata.obs["clone_id"] = [f"clone{i % 9}" for i in range(n_cells)]
    return adata


def _run_every_writer() -> dict[str, dict]:
    """Each public writer once on small data; returns the uns record each left."""
    adata = _counts()
    records = {}
    gv.tl.coexpression(adata, "pearson", use_cache=False, progress=False)
    records["tl.coexpression"] = adata.uns[Key.UNS]["gv_pearson"]
    gv.tl.embed(adata, "gv_pearson", n_components=4, epochs=20, progress=False)
    records["tl.embed"] = adata.uns[Key.UNS][Key.GENE_VECTORS]
    gv.tl.programs(adata, method="kmeans", n_clusters=2)
    records["tl.programs"] = adata.uns[Key.UNS][Key.PROGRAMS]
    gv.tl.score_programs(adata, progress=False)
    records["tl.score_programs"] = adata.uns[Key.UNS][Key.SCORES]
    gv.tl.cell_embed(adata, progress=False)
    records["tl.cell_embed"] = adata.uns[Key.UNS][Key.cell_record(Key.CELL_VECTORS)]
    gv.tl.annotate(adata, {"A": ["g0", "g1"], "B": ["g2", "g3"]})
    records["tl.annotate"] = adata.uns[Key.UNS][Key.CELL_TYPE]
    adata.obs["batch"] = ["b0", "b1"] * (adata.n_obs // 2)
    gv.tl.batch_correct(adata, "batch", progress=False)
    records["tl.batch_correct"] = adata.uns[Key.UNS][Key.CORRECTED]
    gv.tl.gene_network(adata, n_neighbors=3)
    records["tl.gene_network"] = adata.uns[Key.UNS][Key.NETWORK]
    gv.io.compact_coexpression(adata, "gv_pearson", top_k=3)
    records["io.compact_coexpression"] = adata.uns[Key.UNS]["gv_pearson"]
    texts = {g: f"gene {g} of a synthetic test" for g in adata.var_names}
    gv.tl.text_embed(adata, texts, progress=False)
    records["tl.text_embed"] = adata.uns[Key.UNS][Key.TEXT_VECTORS]
    gv.io.read_embeddings(adata, pd.DataFrame(np.eye(16)[:, :3], index=adata.var_names))
    records["io.read_embeddings"] = adata.uns[Key.UNS][Key.IMPORTED_VECTORS]
    gv.graphs.build_clonotype_graph(adata)
    records["graphs.build_clonotype_graph"] = adata.uns[Key.UNS][Key.CLONOTYPE]
    universe, sets, metadata = gv.datasets.region_sets(n_labels=2, sets_per_label=3, universe_size=800, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sets without any overlap, reported
        tokens = gv.regions.tokenize(sets, universe, metadata=metadata)
    gv.regions.train(tokens, "cell_type", n_components=4, epochs=2, progress=False)
    records["regions.train"] = tokens.uns[Key.UNS][Key.BEDSPACE]
    return records


def test_every_writer_records_version_and_seconds():
    started = time.perf_counter()
    records = _run_every_writer()
    assert {name for name, _ in WRITERS} == set(records), "a public writer is missing from this test"
    for name, record in records.items():
        assert record["version"] == gv.__version__, name
        assert 0 <= record["seconds"] <= time.perf_counter() - started, name
        assert "kind" in record, name


def test_old_parameter_names_warn_and_still_work():
    adata = _counts()
    adata.varm["X_gv"] = np.random.default_rng(0).normal(size=(adata.n_vars, 4))
    expected = gv.tl.similar(adata, "g0", n=3, vectors_key="X_gv")
    with pytest.warns(FutureWarning, match="vectors_key"):
        old = gv.tl.similar(adata, "g0", n=3, key="X_gv")
    pd.testing.assert_frame_equal(old, expected)
    with pytest.raises(TypeError, match="both"):
        gv.tl.similar(adata, "g0", key="X_gv", vectors_key="X_gv")
    gv.tl.coexpression(adata, "pearson", use_cache=False, progress=False)
    with pytest.warns(FutureWarning, match="coexpression_key"):
        gv.tl.embed(adata, target_key="gv_pearson", n_components=3, epochs=5, key_added="old", progress=False)
    assert "old" in adata.varm
    with pytest.warns(FutureWarning, match="by position"):
        gv.datasets.region_sets(2, 3, 50, 800)
