"""Programs refined against the expression: the core on arrays (known answers, planted programs,
chunks and dask), and ``gv.tl.programs(refine=...)`` (when it runs, which layer, its record, bad input)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

import geneverse as gv
from geneverse._core._chunks import CellChunks
from geneverse._core._refine import program_correlations, refine_programs, standardise


def planted(
    n_cells: int = 600, per: int = 12, n_programs: int = 3, n_background: int = 10, n_weak: int = 0, seed: int = 0
):
    """Counts: each cell has one type; a type's program genes are 4x higher there. Truth per gene (-1: background).

    ``n_weak`` genes of program 0 come last, only 1.5x higher in its cells.
    """
    rng = np.random.default_rng(seed)
    types = rng.integers(0, n_programs, size=n_cells)
    truth = np.concatenate([np.repeat(np.arange(n_programs), per), np.full(n_background, -1), np.zeros(n_weak, int)])
    means = np.full((n_cells, len(truth)), 0.5)
    for p in range(n_programs):
        means[np.ix_(types == p, np.flatnonzero(truth == p))] *= 4.0
    means[np.ix_(types == 0, np.arange(len(truth) - n_weak, len(truth)))] *= 1.5 / 4.0
    return rng.poisson(means).astype(np.float64), truth


def scrambled(truth: np.ndarray, share: float, seed: int = 1) -> np.ndarray:
    """The truth with ``share`` of the program genes given another program (background genes: program 0)."""
    rng = np.random.default_rng(seed)
    labels = np.where(truth < 0, 0, truth)
    programs = np.flatnonzero(truth >= 0)
    moved = rng.choice(programs, size=int(share * len(programs)), replace=False)
    labels[moved] = (labels[moved] + 1 + rng.integers(0, truth.max(), size=len(moved))) % (truth.max() + 1)
    return labels


def poisson_residuals(X: np.ndarray) -> np.ndarray:
    """``(x - t p) / sqrt(t p)``: each cell's total ``t``, each gene's share ``p`` of all counts."""
    expected = np.outer(X.sum(axis=1), X.sum(axis=0) / X.sum())
    return np.where(expected > 0, (X - expected) / np.sqrt(np.where(expected > 0, expected, 1)), 0.0)


def reference_correlations(X: np.ndarray, labels: np.ndarray, core: np.ndarray, n_programs: int) -> np.ndarray:
    """Direct: Poisson residuals, z-scored, each program scored by its core genes, correlated gene by gene."""
    values = poisson_residuals(X)
    sd = values.std(axis=0)
    z = (values - values.mean(axis=0)) / np.where(sd > 1e-9, sd, 1)
    out = np.zeros((X.shape[1], n_programs))
    for g in range(X.shape[1]):
        for p in range(n_programs):
            members = (labels == p) & core & (sd > 1e-9)
            members[g] = False if labels[g] == p else members[g]  # leave the gene out of its own program
            score = z[:, members].sum(axis=1)
            if sd[g] > 1e-9 and score.std() > 0:
                out[g, p] = np.corrcoef(z[:, g], score)[0, 1]
    return out


def test_correlations_match_a_direct_computation():
    X, truth = planted(n_cells=80, per=4, n_background=3)
    X[:, -1] = 0.0  # a gene never detected: constant, correlation 0, never moves
    X[5] = 0.0  # a cell without counts: its residuals are 0
    labels = scrambled(truth, 0.3)
    core = np.random.default_rng(2).random(len(labels)) > 0.3
    got = program_correlations(CellChunks(sp.csr_matrix(X), chunk_size=7), standardise(CellChunks(X)), labels, core, 3)
    np.testing.assert_allclose(got, reference_correlations(X, labels, core, 3), atol=1e-10)
    assert np.all(got[-1] == 0)


def test_counts_are_poisson_residuals_and_other_values_used_as_given():
    X, _ = planted(n_cells=50, per=3, n_background=2)
    residuals = poisson_residuals(X)
    counts = standardise(CellChunks(sp.csr_matrix(X), chunk_size=9))
    np.testing.assert_allclose(counts.share, X.sum(axis=0) / X.sum())
    # y = residual x sqrt(p) per gene: the standardised values are the residuals', z-scored
    y_mean, y_sd = counts.mean / np.sqrt(counts.share), counts.sd / np.sqrt(counts.share)
    np.testing.assert_allclose(y_mean, residuals.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(y_sd, residuals.std(axis=0), rtol=1e-10)
    logged = np.log1p(X)  # not integers: used as given
    given = standardise(CellChunks(logged))
    assert given.share is None
    np.testing.assert_allclose(given.mean, logged.mean(axis=0))
    np.testing.assert_allclose(given.sd, logged.std(axis=0))


def test_one_chunk_of_non_counts_makes_every_chunk_used_as_given():
    X, _ = planted(n_cells=30, per=3, n_background=2)
    X[17, 2] = 0.5
    mixed = standardise(CellChunks(sp.csr_matrix(X), chunk_size=7))
    assert mixed.share is None
    np.testing.assert_allclose(mixed.mean, X.mean(axis=0))
    nothing = standardise(CellChunks(np.zeros((10, 4)), chunk_size=3))
    assert nothing.share is None and np.all(nothing.sd == 0)


def test_planted_programs_are_recovered_from_scrambled_clusters():
    X, truth = planted()
    start = scrambled(truth, 0.4)
    scored = truth >= 0
    assert adjusted_rand_score(truth[scored], start[scored]) < 0.5
    labels, strength, summary = refine_programs(CellChunks(sp.csr_matrix(X)), start)
    assert adjusted_rand_score(truth[scored], labels[scored]) == 1.0
    # program genes follow their program's activity well past the threshold; background genes, whose
    # labels the refinement leaves, follow their (arbitrary) program's activity far less
    assert strength[scored].min() > 3 / np.sqrt(X.shape[0]) > np.abs(strength[~scored]).max() / 2
    assert summary["converged"] and summary["counts"] and summary["moved"] >= int(0.4 * scored.sum())


def test_genes_that_follow_no_program_keep_their_cluster():
    X, truth = planted(n_background=0)
    rng = np.random.default_rng(3)
    noise = rng.poisson(0.5, size=(X.shape[0], 60)).astype(np.float64)  # independent of every program
    X = np.hstack([X, noise])
    start = np.concatenate([truth, rng.integers(0, 3, size=60)])
    labels, strength, summary = refine_programs(CellChunks(X), start)
    kept = labels[len(truth) :] == start[len(truth) :]
    # a null gene's best of 3 correlations passes 2 standard errors about 7% of the time (4 of 60)
    assert kept.mean() >= 0.8
    assert np.all(strength[len(truth) :][~kept] > 2 / np.sqrt(X.shape[0]))  # those that moved passed the bar
    assert summary["core"] >= len(truth)


def test_weak_genes_join_the_program_they_follow_without_entering_its_core():
    n_weak = 40
    X, truth = planted(n_background=0, n_weak=n_weak)
    start = np.concatenate([truth[:-n_weak], np.ones(n_weak, int)])  # the weak genes start in program 1
    weak = slice(len(truth) - n_weak, None)
    bound = 1 / np.sqrt(X.shape[0])  # one standard error
    labels, strength, summary = refine_programs(CellChunks(X), start)
    strict, _, strict_summary = refine_programs(CellChunks(X), start, member_threshold=3.0)
    joined, strictly_joined = labels[weak] == 0, strict[weak] == 0
    # a weak gene joins program 0 when it follows its activity by 2 standard errors; the core needs 3
    assert joined.sum() >= 10 and joined.sum() > 2 * strictly_joined.sum()
    assert np.all(strength[weak][joined] > 2 * bound)
    assert summary["core"] - strict_summary["core"] <= 2 and summary["core"] < np.sum(strength > 2 * bound)
    np.testing.assert_array_equal(labels[:-n_weak], truth[:-n_weak])  # the strong genes are not disturbed


def test_chunks_and_dask_give_the_same_programs():
    da = pytest.importorskip("dask.array")
    X, truth = planted(n_cells=300)
    start = scrambled(truth, 0.3)
    whole, strength, _ = refine_programs(CellChunks(X), start)
    chunked, chunked_strength, _ = refine_programs(CellChunks(sp.csr_matrix(X), chunk_size=37), start)
    lazy, _, _ = refine_programs(CellChunks(da.from_array(X, chunks=(50, -1))), start)
    np.testing.assert_array_equal(whole, chunked)
    np.testing.assert_allclose(strength, chunked_strength, atol=1e-12)
    np.testing.assert_array_equal(whole, lazy)


def test_labels_must_match_the_genes():
    X, truth = planted(n_cells=30)
    with pytest.raises(ValueError, match="labels"):
        refine_programs(CellChunks(X), truth[:-1])
    with pytest.raises(ValueError, match="negative"):
        refine_programs(CellChunks(X), truth)  # background genes are -1: not a program


# --- gv.tl.programs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained() -> ad.AnnData:
    """Few cells and small programs: the vectors alone leave genes in the wrong cluster."""
    data = gv.datasets.synthetic(600, 200, 4, seed=1, genes_per_program=10)
    data.X = data.X.toarray() * 0 + 1.5  # X is not what the co-expression read: the layer must be used
    gv.tl.coexpression(data, layer="counts", progress=False)
    gv.tl.embed(data, progress=False)
    return data


def program_ari(data: ad.AnnData, key: str = "gv_program") -> float:
    truth = data.var["program"].astype(str)
    keep = (truth != "none").to_numpy()
    return adjusted_rand_score(truth[keep], data.var[key].astype(str)[keep])


def test_default_refines_trained_vectors_against_their_layer(trained):
    data = trained.copy()
    gv.tl.programs(data, progress=False)
    gv.tl.programs(data, refine=False, key_added="clusters", progress=False)
    refinement = data.uns["gv"]["gv_program"]["refinement"]
    assert refinement["layer"] == "counts" and refinement["counts"]
    assert refinement["threshold"] == 3.0 and refinement["member_threshold"] == 2.0
    assert 1 <= refinement["rounds"] <= refinement["max_rounds"]
    assert program_ari(data) > program_ari(data, "clusters") + 0.1
    assert program_ari(data) > 0.7
    assert data.uns["gv"]["gv_program"]["refined"] and not data.uns["gv"]["clusters"]["refined"]
    assert "refinement" not in data.uns["gv"]["clusters"]
    record = data.uns["gv"]["gv_program"]
    assert record["centrality_by"] == "activity correlation"
    assert data.uns["gv"]["clusters"]["centrality_by"] == "cosine"
    for name, genes in record["programs"].items():  # the genes that follow the activity best come first
        assert np.all(np.diff(record["centrality"][name]) <= 1e-12)
        assert set(genes) == set(data.var_names[(data.var["gv_program"] == name).to_numpy()])


def test_imported_vectors_are_not_refined_unless_asked(trained, tmp_path):
    data = ad.AnnData(X=trained.layers["counts"].copy(), var=trained.var[["program"]].copy())
    table = tmp_path / "vectors.tsv"
    gv.io.write_embeddings(trained, table)  # the trained vectors, imported as a user would
    gv.io.read_embeddings(data, table, key_added="X_gv")
    assert data.uns["gv"]["X_gv"]["method"] == "imported"
    gv.tl.programs(data, progress=False)
    assert not data.uns["gv"]["gv_program"]["refined"]
    bare = ad.AnnData(X=data.X.copy(), var=data.var[["program"]].copy())
    bare.varm["X_gv"] = data.varm["X_gv"].copy()  # vectors without any record
    gv.tl.programs(bare, progress=False)
    assert not bare.uns["gv"]["gv_program"]["refined"]
    for flag in (False, np.False_):
        gv.tl.programs(data, refine=flag, key_added="off", progress=False)
        assert not data.uns["gv"]["off"]["refined"]
    gv.tl.programs(data, refine=np.True_, key_added="refined", progress=False)
    assert data.uns["gv"]["refined"]["refinement"]["layer"] == "None"  # X, counts here
    assert program_ari(data, "refined") > program_ari(data)


def test_naming_a_layer_asks_for_the_refinement(trained):
    data = ad.AnnData(X=np.zeros(trained.shape), var=trained.var[["program"]].copy())
    data.layers["counts"] = trained.layers["counts"].copy()
    data.varm["X_gv"] = trained.varm["X_gv"].copy()
    gv.tl.programs(data, layer="counts", progress=False)
    assert data.uns["gv"]["gv_program"]["refinement"]["layer"] == "counts"


def test_an_explicit_layer_wins(trained):
    data = trained.copy()
    data.layers["log"] = data.layers["counts"].copy()
    sc.pp.normalize_total(data, layer="log")
    sc.pp.log1p(data, layer="log")
    gv.tl.programs(data, layer="log", progress=False)
    refinement = data.uns["gv"]["gv_program"]["refinement"]
    assert refinement["layer"] == "log" and not refinement["counts"]
    assert program_ari(data) > 0.7


def test_a_gone_layer_warns_by_default_and_raises_when_asked(trained):
    data = trained.copy()
    del data.layers["counts"]
    with pytest.warns(UserWarning, match="gone") as caught:
        gv.tl.programs(data, progress=False)
    assert caught[0].filename == __file__  # the warning points at the caller's line
    assert not data.uns["gv"]["gv_program"]["refined"]
    with pytest.raises(KeyError, match="layer="):
        gv.tl.programs(data, refine=True, key_added="other", progress=False)
    assert "other" not in data.var


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"refine": "yes"}, TypeError, "refine"),
        ({"layer": "nope"}, KeyError, "Layer"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
    ],
)
def test_bad_refinement_input_leaves_the_object_as_it_was(trained, kwargs, error, message):
    data = trained.copy()
    before = set(data.var), set(data.uns["gv"])
    with pytest.raises(error, match=message):
        gv.tl.programs(data, progress=False, **kwargs)
    assert (set(data.var), set(data.uns["gv"])) == before


def test_refining_needs_cells():
    data = ad.AnnData(X=np.zeros((0, 6)))
    data.varm["X_gv"] = np.random.default_rng(0).normal(size=(6, 3))
    with pytest.raises(ValueError, match="refine=False"):
        gv.tl.programs(data, method="kmeans", n_clusters=2, refine=True, progress=False)
    assert "gv_program" not in data.var and "gv" not in data.uns
    gv.tl.programs(data, method="kmeans", n_clusters=2, progress=False)  # nothing to refine against: as clustered
    assert not data.uns["gv"]["gv_program"]["refined"]


def test_refinement_record_round_trips_and_mudata(trained, tmp_path):
    mudata = pytest.importorskip("mudata")
    mdata = mudata.MuData({"rna": trained.copy()})
    gv.tl.programs(mdata, mod="rna", progress=False)
    record = mdata["rna"].uns["gv"]["gv_program"]["refinement"]
    assert record["layer"] == "counts"
    gv.io.write_h5ad(mdata["rna"], tmp_path / "r.h5ad")
    back = ad.read_h5ad(tmp_path / "r.h5ad")
    assert back.uns["gv"]["gv_program"]["refinement"]["rounds"] == record["rounds"]
    assert back.var["gv_program"].astype(str).equals(mdata["rna"].var["gv_program"].astype(str))
