"""Property-based fuzzing (hypothesis) of the public functions: every generated input either gives a
finite, documented result that changes only the documented outputs, or a clear ValueError / KeyError /
TypeError that leaves the object untouched. Never a crash from deep inside numpy or torch."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geneverse as gv

from ._fingerprint import changed, fingerprint

CLEAR_ERRORS = (ValueError, KeyError, TypeError)
PROFILE = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
DTYPES = [np.int32, np.int64, np.float16, np.float32, np.float64]
TARGETS = ["mi", "pearson", "spearman", "jaccard", "cosine", "cooccurrence", "ppmi"]


@st.composite
def expression(draw) -> AnnData:
    """Small AnnData: any of the storage formats and dtypes, with zero rows/columns, odd names and bad values."""
    n_cells = draw(st.integers(1, 12))
    n_genes = draw(st.integers(1, 7))
    values = np.array(
        draw(st.lists(st.integers(0, 6), min_size=n_cells * n_genes, max_size=n_cells * n_genes)), dtype=float
    ).reshape(n_cells, n_genes)
    if draw(st.booleans()):
        values[draw(st.integers(0, n_cells - 1))] = 0  # an empty cell
    if draw(st.booleans()):
        values[:, draw(st.integers(0, n_genes - 1))] = 0  # an undetected gene
    corruption = draw(st.sampled_from(["none", "none", "none", "nan", "inf", "negative", "huge"]))
    cell, gene = draw(st.integers(0, n_cells - 1)), draw(st.integers(0, n_genes - 1))
    if corruption == "nan":
        values[cell, gene] = np.nan
    elif corruption == "inf":
        values[cell, gene] = np.inf
    elif corruption == "negative":
        values[cell, gene] = -draw(st.integers(1, 5))
    elif corruption == "huge":
        values[cell, gene] = 1e30
    dtype = draw(st.sampled_from(DTYPES))
    if corruption in ("nan", "inf", "huge") and np.issubdtype(dtype, np.integer):
        dtype = np.float64
    with np.errstate(over="ignore", invalid="ignore"):
        matrix = values.astype(dtype)
    storage = "dense" if dtype == np.float16 else draw(st.sampled_from(["dense", "csr", "csc"]))  # no sparse float16
    X = matrix if storage == "dense" else getattr(sp, f"{storage}_matrix")(matrix)
    names = draw(st.sampled_from(["plain", "numeric", "duplicated"]))
    var_names = [f"g{i}" for i in range(n_genes)]
    if names == "numeric":
        var_names = [str(i * 7) for i in range(n_genes)]
    elif names == "duplicated" and n_genes > 1:
        var_names[-1] = var_names[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = AnnData(
            X=X, var=pd.DataFrame(index=var_names), obs=pd.DataFrame(index=[f"c{i}" for i in range(n_cells)])
        )
    adata.uns["untouched"] = {"a": 1}
    adata.varm["existing"] = np.ones((n_genes, 2))
    return adata


def check_call(adata: AnnData, call, allowed: set[str]) -> bool:
    """Run ``call``; on success only ``allowed`` slot entries may change, on failure nothing may."""
    before = fingerprint(adata)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call(adata)
    except CLEAR_ERRORS as error:
        assert str(error), "errors must say what is wrong"
        assert not changed(before, fingerprint(adata)), "a failed call modified the AnnData"
        return False
    touched = changed(before, fingerprint(adata))
    assert touched <= allowed, f"undocumented changes: {touched - allowed}"
    return True


@PROFILE
@given(adata=expression(), target=st.sampled_from(TARGETS))
def test_coexpression_any_input(adata, target):
    key = f"gv_{target}"
    ok = check_call(
        adata,
        lambda a: gv.tl.coexpression(a, target, progress=False, use_cache=False),
        {f"varp:{key}", f"uns:gv:{key}"},
    )
    if ok:
        values = gv.io.coexpression_frame(adata, key).to_numpy()
        assert values.shape == (adata.n_vars, adata.n_vars) and np.isfinite(values).all()
        if target in ("pearson", "spearman", "cosine", "jaccard"):
            assert np.abs(values).max() <= 1 + 1e-6


@PROFILE
@given(adata=expression(), genes=st.lists(st.sampled_from(["g0", "g1", "g2", "BRCA1", "7"]), max_size=3))
def test_coexpression_gene_subsets(adata, genes):
    check_call(
        adata,
        lambda a: gv.tl.coexpression(a, "pearson", genes=genes, progress=False, use_cache=False),
        {"varp:gv_pearson", "uns:gv:gv_pearson"},
    )


@st.composite
def vectors(draw) -> AnnData:
    n_genes = draw(st.integers(1, 10))
    dims = draw(st.integers(1, 4))
    values = np.array(
        draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=n_genes * dims, max_size=n_genes * dims))
    ).reshape(n_genes, dims)
    if draw(st.booleans()):
        values[draw(st.integers(0, n_genes - 1))] = np.nan
    if draw(st.booleans()):
        values[draw(st.integers(0, n_genes - 1))] = 0
    adata = AnnData(X=sp.csr_matrix((2, n_genes)))
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    adata.varm["X_gv"] = values.astype(draw(st.sampled_from([np.float32, np.float64])))
    return adata


GENE = st.sampled_from(["g0", "g1", "g2", "g3", "nope"])


@PROFILE
@given(
    adata=vectors(),
    a=GENE,
    b=GENE,
    c=GENE,
    n=st.integers(-1, 12),
    kind=st.sampled_from(["similar", "analogy", "pairs"]),
)
def test_queries_any_vectors(adata, a, b, c, n, kind):
    before = fingerprint(adata)
    try:
        if kind == "similar":
            table = gv.tl.similar(adata, a, n=n)
        elif kind == "analogy":
            table = gv.tl.analogy(adata, a, b, c, n=n)
        else:
            table = gv.tl.similar_pairs(adata, a, b, n=n)
    except CLEAR_ERRORS:
        assert not changed(before, fingerprint(adata))
        return
    assert not changed(before, fingerprint(adata)), "queries write nothing"
    score = table.columns[-1] if kind != "similar" else "similarity"
    assert len(table) <= n and np.isfinite(table[score].to_numpy()).all()
    assert list(table[score]) == sorted(table[score], reverse=True)
    named = set(table.iloc[:, 0]) | (set(table.iloc[:, 1]) if kind == "pairs" else set())
    assert not named & {a, b, c} & ({a} if kind == "similar" else {a, b} if kind == "pairs" else {a, b, c})


@PROFILE
@given(adata=vectors(), weighting=st.sampled_from(["log1p", "raw", "tfidf"]), k=st.integers(0, 4))
def test_cells_and_programs_any_vectors(adata, weighting, k):
    rng = np.random.default_rng(k)
    adata.X = sp.csr_matrix(rng.poisson(1.0, size=(adata.n_obs, adata.n_vars)).astype(np.float32))
    if check_call(
        adata,
        lambda a: gv.tl.cell_embed(a, weighting=weighting, progress=False),
        {"obsm:X_gv_cells", "uns:gv:X_gv_cells"},
    ):
        assert np.isfinite(adata.obsm["X_gv_cells"]).all()
        norms = np.linalg.norm(adata.obsm["X_gv_cells"], axis=1)
        assert np.all((np.abs(norms - 1) < 1e-4) | (norms == 0))
    if check_call(
        adata, lambda a: gv.tl.programs(a, method="kmeans", n_clusters=k), {"var:gv_program", "uns:gv:gv_program"}
    ):
        usable = np.isfinite(adata.varm["X_gv"]).all(axis=1) & (np.abs(adata.varm["X_gv"]).sum(axis=1) > 0)
        assert adata.var["gv_program"].notna().sum() == usable.sum(), adata.varm["X_gv"].tolist()
        check_call(
            adata,
            lambda a: gv.tl.score_programs(a, ctrl_size=k, n_bins=max(k, 1), progress=False),
            {"obsm:gv_programs", "uns:gv:gv_programs"},
        )


@settings(max_examples=25, deadline=None)
@given(
    n_genes=st.integers(2, 8),
    method=st.sampled_from(["genevector", "glove"]),
    negative=st.booleans(),
    seed=st.integers(0, 3),
)
def test_embed_any_target(n_genes, method, negative, seed):
    rng = np.random.default_rng(seed)
    target = rng.random((n_genes, n_genes)) * (10 if method == "glove" else 1)
    target = (target + target.T) / 2
    if negative:
        target[0, 1] = target[1, 0] = -1.0
    adata = AnnData(X=sp.csr_matrix((2, n_genes)))
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    adata.varp["t"] = target
    if check_call(
        adata, lambda a: gv.tl.embed(a, "t", method=method, n_components=3, epochs=20, progress=False),
        {"varm:X_gv", "uns:gv:X_gv"},
    ):  # fmt: skip
        assert np.isfinite(adata.varm["X_gv"]).all()
    else:
        assert method == "glove" and negative  # the only documented refusal here


@settings(max_examples=40, deadline=None)
@given(
    entries=st.dictionaries(
        st.one_of(st.sampled_from(["g0", "g1", "G2", "x"]), st.integers(0, 3)),
        st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=3),
        max_size=4,
    ),
    case_sensitive=st.booleans(),
)
def test_read_embeddings_any_mapping(entries, case_sensitive):
    adata = AnnData(X=sp.csr_matrix((2, 3)))
    adata.var_names = ["g0", "g1", "g2"]
    if check_call(
        adata,
        lambda a: gv.io.read_embeddings(a, entries, key_added="X_in", case_sensitive=case_sensitive),
        {"varm:X_in", "uns:gv:X_in"},
    ):
        vectors = adata.varm["X_in"]
        found = np.isfinite(vectors).all(axis=1)
        assert found.any() and np.isnan(vectors[~found]).all()


@settings(max_examples=40, deadline=None)
@given(
    regions=st.lists(
        st.tuples(st.sampled_from(["chr1", "chr2", "chrZ"]), st.integers(-5, 60), st.integers(-5, 60)),
        min_size=1,
        max_size=6,
    )
)
def test_tokenize_any_regions(regions):
    universe = pd.DataFrame({"chrom": ["chr1", "chr1", "chr2"], "start": [0, 20, 0], "end": [10, 40, 50]})
    frame = pd.DataFrame(regions, columns=["chrom", "start", "end"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tokens = gv.regions.tokenize({"s": frame}, universe)
    except CLEAR_ERRORS:
        assert ((frame["end"] <= frame["start"]) | (frame["start"] < 0)).any()
        return
    expected = [any(c == u.chrom and s < u.end and u.start < e for c, s, e in regions) for u in universe.itertuples()]
    assert tokens.X.toarray()[0].astype(bool).tolist() == expected


def test_unknown_keys_everywhere(adata):
    with pytest.raises(KeyError):
        gv.tl.similar(adata, "g0")
    with pytest.raises(KeyError):
        gv.tl.embed(adata, "nothing", progress=False)
    with pytest.raises(KeyError):
        gv.tl.score_programs(adata, progress=False)
    with pytest.raises(KeyError):
        gv.io.coexpression_frame(adata, "nothing")
    with pytest.raises(KeyError):
        gv.io.write_embeddings(adata, "x.txt")


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(-2, 30),
    absolute=st.booleans(),
    names=st.lists(st.text(alphabet="ab |_:x1", min_size=1, max_size=6), min_size=2, max_size=5, unique=True),
    digits=st.integers(0, 5),
)
def test_io_tables_any_request(tmp_path_factory, n, absolute, names, digits):
    rng = np.random.default_rng(len(names))
    adata = AnnData(X=sp.csr_matrix(rng.poisson(2.0, size=(20, len(names))).astype(np.float32)))
    adata.var_names = names
    adata.var["description"] = [f"about {g}" for g in names]
    adata.varm["X_gv"] = rng.normal(size=(len(names), 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gv.tl.coexpression(adata, "pearson", progress=False, use_cache=False)
    before = fingerprint(adata)
    try:
        pairs = gv.io.top_pairs(adata, "gv_pearson", n=n, absolute=absolute)
    except CLEAR_ERRORS:
        assert n < 1
    else:
        assert len(pairs) == min(n, len(names) * (len(names) - 1) // 2) and np.isfinite(pairs.score).all()
    text = gv.io.to_markdown(gv.tl.similar(adata, names[0], n=3), adata, digits=digits)
    assert text.count("\n") == 2 + min(3, len(names) - 1)  # header, rule, one line per row
    folder = tmp_path_factory.mktemp("io")
    gv.io.write_coexpression(adata, folder / "m.tsv", "gv_pearson")
    for suffix in (".tsv", ".csv", ".pkl", ".npy", ".txt"):
        path = folder / f"v{suffix}"
        try:
            gv.io.write_embeddings(adata, path)
        except ValueError as error:  # names with spaces cannot go into word2vec text
            assert suffix == ".txt" and "whitespace" in str(error)
            continue
        copy = adata.copy()
        gv.io.read_embeddings(copy, path, key_added="back", allow_pickle=suffix == ".pkl")
        np.testing.assert_allclose(copy.varm["back"], adata.varm["X_gv"], rtol=1e-6, err_msg=f"{suffix} {names}")
    assert not changed(before, fingerprint(adata)), "writing files must not change the AnnData"


@st.composite
def peak_names(draw) -> str:
    chrom = draw(st.sampled_from(["chr1", "chrX", "chr1_KI270706v1_random", "1", ""]))
    separator = draw(st.sampled_from([":", "_", "-", " "]))
    start, end = draw(st.integers(-3, 50)), draw(st.integers(-3, 50))
    return f"{chrom}{separator}{start}{draw(st.sampled_from(['-', '_', ':']))}{end}"


@settings(max_examples=60, deadline=None)
@given(names=st.lists(peak_names(), min_size=1, max_size=4))
def test_parse_peaks_any_names(names):
    try:
        table = gv.regions.parse_peaks(names)
    except ValueError as error:
        assert "Peak name" in str(error) or "start < end" in str(error)
        return
    assert len(table) == len(names) and (table["end"] > table["start"]).all()


@pytest.fixture(scope="module")
def tiny_model():
    universe, sets, metadata = gv.datasets.region_sets(n_labels=3, sets_per_label=4, universe_size=900, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = gv.regions.tokenize(sets, universe, metadata=metadata)
    gv.regions.train(model, "cell_type", n_components=8, epochs=3, progress=False)
    return model, universe


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["r2l", "l2r", "r2r", "x"]),
    query=st.sampled_from(["type0", "cell_type:type1", "type9", "type0_set000", "nothing", "frame"]),
    n=st.integers(-1, 20),
)
def test_region_search_any_query(tiny_model, kind, query, n):
    model, universe = tiny_model
    before = fingerprint(model)
    if query == "frame":
        query = universe.iloc[:5]
    try:
        table = gv.regions.search(model, query, kind, n)
    except CLEAR_ERRORS:
        assert not changed(before, fingerprint(model))
        return
    assert 0 < len(table) <= n and np.isfinite(table.similarity).all()
    assert list(table.similarity) == sorted(table.similarity, reverse=True)
    assert not changed(before, fingerprint(model))
    matrix = gv.regions.distances(model, kind)
    assert np.isfinite(matrix.to_numpy()).all()


@settings(max_examples=25, deadline=None)
@given(
    dim=st.integers(0, 6),
    epochs=st.integers(0, 3),
    n_negatives=st.integers(0, 4),
    batch_size=st.integers(0, 9),
    labels=st.lists(st.sampled_from(["A", "B", "C", None]), min_size=6, max_size=6),
    lr=st.sampled_from([0.05, 0.0, -1.0]),
)
def test_region_train_any_parameters(dim, epochs, n_negatives, batch_size, labels, lr):
    universe = pd.DataFrame({"chrom": ["chr1"] * 8, "start": np.arange(8) * 100, "end": np.arange(8) * 100 + 50})
    rng = np.random.default_rng(0)
    sets = {f"s{i}": universe.iloc[np.sort(rng.choice(8, 3, replace=False))].reset_index(drop=True) for i in range(6)}
    metadata = pd.DataFrame({"label": labels}, index=[f"s{i}" for i in range(6)])
    tokens = gv.regions.tokenize(sets, universe, metadata=metadata)
    ok = check_call(
        tokens,
        lambda t: gv.regions.train(
            t,
            "label",
            n_components=dim,
            epochs=epochs,
            n_negatives=n_negatives,
            batch_size=batch_size,
            lr=lr,
            progress=False,
        ),
        {"varm:X_bedspace", "obsm:X_bedspace", "uns:gv:X_bedspace"},
    )
    if ok:
        assert np.isfinite(tokens.varm["X_bedspace"]).all() and np.isfinite(tokens.obsm["X_bedspace"]).all()
        assert len({x for x in labels if x is not None}) >= 2
