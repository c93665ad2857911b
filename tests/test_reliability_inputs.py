"""Input validation and numerical reliability: clear errors that name the fix, and no change to the AnnData."""

from __future__ import annotations

import copy
import gzip
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scipy.stats
from anndata import AnnData

import geneverse as gv

UNIVERSE = pd.DataFrame({"chrom": ["chr1", "chr1", "chr2"], "start": [0, 10, 0], "end": [10, 20, 100]})
INT_RANGE = r"integers in 0\.\.2\*\*63-1"


def snapshot(adata: AnnData) -> dict:
    X = adata.X.toarray() if sp.issparse(adata.X) else np.array(adata.X)
    return {
        "X": X,
        "varp": set(adata.varp.keys()),
        "varm": set(adata.varm.keys()),
        "obsm": set(adata.obsm.keys()),
        "var": adata.var.copy(),
        "uns": copy.deepcopy(dict(adata.uns)),
    }


def assert_unchanged(adata: AnnData, before: dict) -> None:
    after = snapshot(adata)
    np.testing.assert_array_equal(after["X"], before["X"])
    for key in ("varp", "varm", "obsm"):
        assert after[key] == before[key], key
    pd.testing.assert_frame_equal(after["var"], before["var"])
    assert after["uns"].keys() == before["uns"].keys()
    assert after["uns"].get("gv", {}).keys() == before["uns"].get("gv", {}).keys()


# 1. Pearson with large offsets -----------------------------------------------------------------


def offset_genes(n_cells: int = 400, seed: int = 0) -> np.ndarray:
    """Genes 0 and 2 sit at 1e6 and 1e9 with a coefficient of variation ~1e-7; 1 is their noisy partner."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n_cells)
    return np.column_stack(
        [
            1e6 + 1e6 * 1e-7 * noise,
            noise + 0.5 * rng.standard_normal(n_cells),
            1e9 + 1e9 * 1e-7 * (noise + 0.3 * rng.standard_normal(n_cells)),
            np.full(n_cells, 5.0),  # truly constant
            rng.poisson(2.0, size=(n_cells, 4)),
        ]
    ).astype(np.float64)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_pearson_recovers_correlation_of_genes_with_a_large_offset(kind):
    X = offset_genes()
    adata = AnnData(X=X if kind == "dense" else sp.csr_matrix(X))
    adata.var_names = [f"g{i}" for i in range(X.shape[1])]
    with pytest.warns(UserWarning, match=r"1 gene\(s\) have zero variance \(e\.g\. \['g3'\]\)"):
        gv.tl.coexpression(adata, "pearson", progress=False, use_cache=False, chunk_size=150)
    got = np.asarray(adata.varp["gv_pearson"], dtype=np.float64)
    varying = [0, 1, 2, 4, 5, 6, 7]
    expected = np.corrcoef(X[:, varying], rowvar=False)
    np.testing.assert_allclose(got[np.ix_(varying, varying)], expected, atol=1e-6)
    assert got[0, 1] == pytest.approx(scipy.stats.pearsonr(X[:, 0], X[:, 1]).statistic, abs=1e-6)
    assert got[0, 1] > 0.8 and got[0, 2] > 0.9  # not the 0 of a gene wrongly called constant
    assert np.all(got[3] == 0) and np.all(got[:, 3] == 0)


def test_spearman_unaffected_by_offsets():
    X = offset_genes()
    adata = AnnData(X=sp.csr_matrix(X))
    adata.var_names = [f"g{i}" for i in range(X.shape[1])]
    with pytest.warns(UserWarning, match="zero variance"):
        gv.tl.coexpression(adata, "spearman", progress=False, use_cache=False)
    varying = [0, 1, 2, 4, 5, 6, 7]
    expected = scipy.stats.spearmanr(X[:, varying]).statistic
    got = np.asarray(adata.varp["gv_spearman"], dtype=np.float64)
    np.testing.assert_allclose(got[np.ix_(varying, varying)], expected, atol=1e-6)
    assert np.all(got[3] == 0)


# 2. gv.regions.train ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def region_tokens() -> AnnData:
    universe, sets, metadata = gv.datasets.region_sets(n_labels=2, sets_per_label=3, universe_size=800, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gv.regions.tokenize(sets, universe, metadata=metadata)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": float("inf")}, "lr must be finite"),
        ({"lr": float("nan")}, "lr must be finite"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"margin": float("nan")}, "margin must be finite"),
        ({"margin": float("inf")}, "margin must be finite"),
        ({"margin": -0.1}, "margin must be non-negative"),
        ({"lr": 1e38}, "diverged.*smaller lr"),
    ],
)
def test_region_training_rejects_bad_numbers_and_divergence(region_tokens, kwargs, message):
    tokens = region_tokens.copy()
    before = snapshot(tokens)
    with pytest.raises(ValueError, match=message):
        gv.regions.train(tokens, "cell_type", n_components=8, epochs=3, progress=False, **kwargs)
    assert_unchanged(tokens, before)
    assert "X_bedspace" not in tokens.varm and "X_bedspace" not in tokens.obsm


# 3. Tokenisation -------------------------------------------------------------------------------


def test_same_set_name_twice_in_a_folder(tmp_path):
    (tmp_path / "s1.bed").write_text("chr1\t0\t5\n")
    with gzip.open(tmp_path / "s1.bed.gz", "wt") as handle:
        handle.write("chr1\t12\t15\n")
    with pytest.raises(ValueError, match=r"'s1'.*s1\.bed and .*s1\.bed\.gz.*rename"):
        gv.regions.tokenize(tmp_path, UNIVERSE)


def test_same_set_name_twice_in_a_list(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "s1.bed").write_text("chr1\t0\t5\n")
    paths = [tmp_path / "a" / "s1.bed", tmp_path / "b" / "s1.bed"]
    with pytest.raises(ValueError, match="rename") as info:
        gv.regions.tokenize(paths, UNIVERSE)
    assert str(paths[0]) in str(info.value) and str(paths[1]) in str(info.value)


@pytest.mark.parametrize("text", ["1e23", "100000000000000000000000", "9223372036854775808", "1.5", "12abc"])
def test_bed_file_coordinates_out_of_range(tmp_path, text):
    bed = tmp_path / "s.bed"
    bed.write_text(f"chr1\t0\t5\nchr1\t1\t{text}\n")
    with pytest.raises(ValueError, match=rf"s\.bed: end coordinates must be {INT_RANGE}.*region 2"):
        gv.regions.read_bed(bed)
    with pytest.raises(ValueError, match=INT_RANGE):
        gv.regions.tokenize([bed], UNIVERSE)


def test_largest_int64_coordinate_is_read(tmp_path):
    bed = tmp_path / "s.bed"
    bed.write_text("chr1\t0\t9223372036854775807\n")
    assert gv.regions.read_bed(bed)["end"].iloc[0] == 2**63 - 1


@pytest.mark.parametrize("value", [1e23, 1.5, float("nan"), float("inf"), 2.0**63])
@pytest.mark.parametrize("where", ["set", "universe"])
def test_dataframe_coordinates_out_of_range(value, where):
    bad = pd.DataFrame({"chrom": ["chr1", "chr1"], "start": [0.0, 1.0], "end": [5.0, value]})
    sets, universe = ({"s": bad}, UNIVERSE) if where == "set" else ({"s": UNIVERSE}, bad)
    with pytest.raises(ValueError, match=INT_RANGE):
        gv.regions.tokenize(sets, universe)


def test_integral_float_and_python_int_coordinates_are_fine():
    floats = pd.DataFrame({"chrom": ["chr1"], "start": [1.0], "end": [5.0]})
    objects = pd.DataFrame({"chrom": ["chr1"], "start": [1], "end": [10**23]}, dtype=object)
    assert gv.regions.tokenize({"s": floats}, UNIVERSE).X.toarray().tolist() == [[1, 0, 0]]
    with pytest.raises(ValueError, match=INT_RANGE):
        gv.regions.tokenize({"s": objects}, UNIVERSE)


def test_region_tables_with_a_non_default_index():
    sliced = {"s": UNIVERSE.iloc[1:3]}  # index labels 1, 2: overlaps must follow positions, not labels
    shuffled = {"s": UNIVERSE.iloc[[2, 0]].set_axis([10, 11])}
    assert gv.regions.tokenize(sliced, UNIVERSE).X.toarray().tolist() == [[0, 1, 1]]
    assert gv.regions.tokenize(shuffled, UNIVERSE).X.toarray().tolist() == [[1, 0, 1]]
    tokens = gv.regions.tokenize({"s": UNIVERSE}, UNIVERSE.iloc[[2, 1]])
    assert tokens.X.toarray().tolist() == [[1, 1]] and tokens.uns["gv"]["tokenize"]["n_regions_without_overlap"] == 1


def test_duplicate_metadata_rows():
    sets = {"s1": UNIVERSE.iloc[:1], "s2": UNIVERSE.iloc[1:2]}
    metadata = pd.DataFrame({"name": ["s1", "s2", "s2"], "cell_type": ["T", "B", "NK"]})
    with pytest.raises(ValueError, match=r"more than one row for sets \['s2'\].*one row per set"):
        gv.regions.tokenize(sets, UNIVERSE, metadata=metadata)
    assert len(metadata) == 3  # the caller's table is not modified


# 4. gv.bench ----------------------------------------------------------------------------------


def test_read_gmt_rejects_a_set_defined_twice(tmp_path):
    path = tmp_path / "sets.gmt"
    path.write_text("SET_A\td\tg1\tg2\nSET_B\td\tg3\nSET_A\td\tg4\n")
    with pytest.raises(ValueError, match=r"'SET_A' is defined twice, on lines 1 and 3.*rename"):
        gv.bench.read_gmt(path)


def gene_vectors(n_genes: int = 60, seed: int = 0) -> AnnData:
    rng = np.random.default_rng(seed)
    adata = AnnData(np.zeros((2, n_genes), dtype=np.float32))
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    adata.varm["X_gv"] = rng.standard_normal((n_genes, 4))
    return adata


@pytest.mark.parametrize("max_sets", [0, -1, 1.5, True])
def test_gene_set_auroc_max_sets_must_be_none_or_positive(max_sets):
    adata = gene_vectors()
    before = snapshot(adata)
    sets = {f"s{k}": [f"g{i}" for i in range(k, k + 12)] for k in range(3)}
    with pytest.raises(ValueError, match=r"max_sets must be a positive integer.*max_sets=None"):
        gv.bench.gene_set_auroc(adata, sets, random_baseline=False, max_sets=max_sets)
    assert_unchanged(adata, before)


def test_gene_set_auroc_max_sets_counts():
    adata = gene_vectors()
    sets = {f"s{k}": [f"g{i}" for i in range(k, k + 12 + k)] for k in range(3)}
    one = gv.bench.gene_set_auroc(adata, sets, random_baseline=False, max_sets=1, n_folds=3)
    every = gv.bench.gene_set_auroc(adata, sets, random_baseline=False, max_sets=None, n_folds=3)
    assert one["gene_set"].tolist() == ["s2"] and sorted(every["gene_set"]) == ["s0", "s1", "s2"]


# 5. Seeds -------------------------------------------------------------------------------------

SEEDED = {
    "tl.embed": lambda a, s: gv.tl.embed(a, progress=False, seed=s),
    "tl.programs": lambda a, s: gv.tl.programs(a, seed=s),
    "tl.score_programs": lambda a, s: gv.tl.score_programs(a, {"p": ["g0", "g1"]}, progress=False, seed=s),
    "bench.gene_set_auroc": lambda a, s: gv.bench.gene_set_auroc(a, {"p": ["g0"]}, seed=s),
    "bench.cell_scores": lambda a, s: gv.bench.cell_scores(a, "label", seed=s),
    "datasets.synthetic": lambda a, s: gv.datasets.synthetic(50, 20, 2, seed=s),
    "datasets.region_sets": lambda a, s: gv.datasets.region_sets(seed=s),
    "regions.train": lambda a, s: gv.regions.train(a, "label", progress=False, seed=s),
    "pl.gene_map": lambda a, s: gv.pl.gene_map(a, show=False, seed=s),
    "pl.cell_map": lambda a, s: gv.pl.cell_map(a, "X_gv", show=False, seed=s),
}


@pytest.mark.parametrize(("seed", "error"), [(1.5, TypeError), ("7", TypeError), (True, TypeError), (-1, ValueError)])
@pytest.mark.parametrize("function", list(SEEDED))
def test_bad_seed_is_rejected_before_any_work(adata, function, seed, error):
    adata.obs["label"] = ["a", "b"] * (adata.n_obs // 2)
    adata.varm["X_gv"] = np.random.default_rng(0).standard_normal((adata.n_vars, 4))
    adata.obsm["X_gv"] = np.random.default_rng(1).standard_normal((adata.n_obs, 4))
    before = snapshot(adata)
    with pytest.raises(error, match=r"seed must be a non-negative integer.*e\.g\. seed=0"):
        SEEDED[function](adata, seed)
    assert_unchanged(adata, before)


# 6. gv.tl.embed -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        (float("nan"), "scale must be finite"),
        (float("inf"), "scale must be finite"),
        (0.0, "scale must be positive"),
        (-3.0, "scale must be positive"),
        (1e200, r"scale=1e\+200 is too large.*use a smaller scale"),
        (1e10, r"scale=10000000000\.0 is too large.*use a smaller scale"),
        (1e-40, r"too small.*use a larger scale"),
    ],
)
def test_embed_rejects_bad_scale(adata, scale, message):
    gv.tl.coexpression(adata, "pearson", progress=False)
    before = snapshot(adata)
    with pytest.raises(ValueError, match=message):
        gv.tl.embed(adata, "gv_pearson", n_components=4, epochs=5, scale=scale, progress=False)
    assert_unchanged(adata, before)


def test_embed_large_but_safe_scale_trains(adata):
    gv.tl.coexpression(adata, "pearson", progress=False)
    gv.tl.embed(adata, "gv_pearson", n_components=4, epochs=5, scale=1e5, progress=False)
    assert np.isfinite(adata.varm["X_gv"]).all()


def test_embed_with_var_names_duplicated_after_coexpression(adata):
    gv.tl.coexpression(adata, "pearson", progress=False)
    adata.var_names = ["g"] * adata.n_vars
    before = snapshot(adata)
    with pytest.raises(ValueError, match=r"var_names are not unique.*var_names_make_unique"):
        gv.tl.embed(adata, "gv_pearson", n_components=4, epochs=5, progress=False)
    assert_unchanged(adata, before)


@pytest.mark.parametrize("device", ["mps", "meta"])
def test_embed_rejects_unsupported_devices(adata, device):
    gv.tl.coexpression(adata, "pearson", progress=False)
    before = snapshot(adata)
    with pytest.raises(ValueError, match=rf"device='{device}' is not supported; use 'auto', 'cpu' or 'cuda'"):
        gv.tl.embed(adata, "gv_pearson", n_components=4, epochs=5, device=device, progress=False)
    assert_unchanged(adata, before)


def test_region_set_names_that_clash_as_text():
    frame = pd.DataFrame({"chrom": ["chr1"], "start": [0], "end": [10]})
    with pytest.raises(ValueError, match="distinct name"):
        gv.regions.tokenize({1: frame, "1": frame}, frame)


def test_a_universe_that_is_not_a_bed_file_is_named(tmp_path):
    path = tmp_path / "universe.bed"
    path.write_text("chr1\t5\n")
    with pytest.raises(ValueError, match=r"universe\.bed is not a BED file"):
        gv.regions.read_bed(path)


def test_region_training_with_no_labelled_set(region_tokens):
    sets = region_tokens.copy()
    sets.obs["none"] = pd.Series([None] * sets.n_obs, index=sets.obs_names, dtype=object)
    with pytest.raises(ValueError, match="at least 2 labels"):
        gv.regions.train(sets, "none", n_components=4, epochs=1, progress=False)
    assert "X_bedspace" not in sets.varm
