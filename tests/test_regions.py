"""Regions (BEDspace): tokenisation against hand-computed overlaps, training with known truth, search, ATAC."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

import geneverse as gv

UNIVERSE = pd.DataFrame({"chrom": ["chr1", "chr1", "chr1", "chr2"], "start": [0, 10, 30, 0], "end": [10, 20, 40, 100]})


def test_tokenize_hand_computed_overlaps(tmp_path):
    bed = tmp_path / "a.bed"
    # [5, 10) touches [10, 20) only at 10: half-open, so it overlaps universe region 0 alone;
    # [10, 11) overlaps region 1 alone; chr3 is not in the universe.
    bed.write_text("track name=a\nchr1\t5\t10\nchr1\t10\t11\tpeak\nchr3\t0\t5\n")
    sets = {"b": pd.DataFrame({"chrom": ["chr1", "chr2"], "start": [20, 99], "end": [30, 150]})}
    with pytest.warns(UserWarning, match="chr3"):
        from_file = gv.regions.tokenize([bed], UNIVERSE)
    assert from_file.X.toarray().tolist() == [[1, 1, 0, 0]]
    assert list(from_file.uns["gv"]["tokenize"]["unknown_chromosomes"]) == ["chr3"]
    assert from_file.uns["gv"]["tokenize"]["n_regions_without_overlap"] == 1
    # [20, 30) touches regions 1 and 2 at their ends: no overlap; [99, 150) overlaps chr2's [0, 100)
    tokens = gv.regions.tokenize(sets, UNIVERSE)
    assert tokens.X.toarray().tolist() == [[0, 0, 0, 1]]
    assert list(tokens.var_names) == ["chr1:0-10", "chr1:10-20", "chr1:30-40", "chr2:0-100"]


def test_empty_sets_are_reported_not_dropped(tmp_path):
    (tmp_path / "x.bed").write_text("chr1\t20\t30\n")
    (tmp_path / "y.bed").write_text("chr1\t0\t1\n")
    metadata = pd.DataFrame({"file": ["x.bed", "y.bed"], "cell_type": ["T", "B"]})
    with pytest.warns(UserWarning, match="1 sets overlap no universe region"):
        tokens = gv.regions.tokenize(tmp_path, UNIVERSE, metadata=metadata)
    assert list(tokens.obs_names) == ["x", "y"] and tokens.obs["cell_type"].tolist() == ["T", "B"]
    assert list(tokens.uns["gv"]["tokenize"]["empty_sets"]) == ["x"]


@pytest.mark.parametrize(
    ("sets", "error", "message"),
    [
        ({"s": pd.DataFrame({"chrom": ["chr1"], "start": [5], "end": [5]})}, ValueError, "start < end"),
        ({"s": pd.DataFrame({"chrom": ["chr1"], "begin": [5]})}, ValueError, "missing"),
        ("/no/such/folder", FileNotFoundError, "not a folder"),
    ],
)
def test_bad_region_sets(sets, error, message):
    with pytest.raises(error, match=message):
        gv.regions.tokenize(sets, UNIVERSE)


def test_atac_modality_path():
    mudata = pytest.importorskip("mudata")
    peaks = ["chr1:2-8", "chr1_12_15", "chr2:50-60", "chr1:20-30"]
    counts = np.array([[1, 0, 0, 0], [0, 3, 2, 0], [0, 0, 0, 5]], dtype=np.float32)
    atac = AnnData(X=sp.csr_matrix(counts), obs=pd.DataFrame({"cell_type": ["T", "B", "T"]}, index=["c0", "c1", "c2"]))
    atac.var_names = peaks
    mdata = mudata.MuData({"atac": atac})
    with pytest.warns(UserWarning, match="1 sets"):
        tokens = gv.regions.tokenize(mdata, UNIVERSE, mod="atac")
    assert tokens.X.toarray().tolist() == [[1, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0]]
    assert tokens.obs["cell_type"].tolist() == ["T", "B", "T"]
    with pytest.raises(ValueError, match="not 'chrom:start-end'"):
        gv.regions.parse_peaks(["peak1"])


@pytest.fixture(scope="module")
def trained():
    universe, sets, metadata = gv.datasets.region_sets(seed=0)
    held = set(np.random.default_rng(1).choice(list(sets), 16, replace=False))
    tokens = gv.regions.tokenize({k: v for k, v in sets.items() if k not in held}, universe, metadata=metadata)
    gv.regions.train(tokens, ["cell_type"], epochs=30, progress=False)
    return tokens, sets, metadata, held


def test_known_answer_retrieval(trained):
    model, sets, metadata, held = trained
    hits = [
        gv.regions.search(model, sets[name], "r2l", n=1).label[0] == f"cell_type:{metadata.loc[name, 'cell_type']}"
        for name in held
    ]
    assert np.mean(hits) >= 0.9  # held-out sets: measured 1.0 at signal 0.5, chance 0.25
    for label in ("type0", "cell_type:type3"):
        top = gv.regions.search(model, label, "l2r", n=10)
        assert top.set.str.startswith(label.split(":")[-1]).mean() >= 0.9
    query = model.obs_names[0]
    same = gv.regions.search(model, query, "r2r", n=10)
    assert query not in set(same.set) and same.set.str.startswith(query.split("_")[0]).all()


def test_distances_match_search_and_round_trip(trained, tmp_path):
    model = trained[0]
    r2l = gv.regions.distances(model, "r2l")
    assert r2l.shape == (model.n_obs, 4)
    top = gv.regions.search(model, model.obs_names[3], "r2l", n=4)
    np.testing.assert_allclose(top.similarity, np.sort(r2l.iloc[3].to_numpy())[::-1], atol=1e-6)
    assert gv.regions.distances(model, "r2r").shape == (model.n_obs, model.n_obs)
    np.testing.assert_allclose(gv.regions.distances(model, "l2r").to_numpy(), r2l.to_numpy().T)
    path = tmp_path / "model.h5ad"
    model.write_h5ad(path)
    import anndata as ad

    back = ad.read_h5ad(path)
    pd.testing.assert_frame_equal(gv.regions.search(back, "type1", "l2r"), gv.regions.search(model, "type1", "l2r"))


def test_training_is_reproducible():
    universe, sets, metadata = gv.datasets.region_sets(n_labels=2, sets_per_label=5, universe_size=800, seed=2)
    tokens = gv.regions.tokenize(sets, universe, metadata=metadata)
    runs = [gv.regions.train(tokens, "cell_type", epochs=3, copy=True, progress=False) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].varm["X_bedspace"], runs[1].varm["X_bedspace"])


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: gv.regions.train(m, ["tissue"], progress=False), KeyError, "tissue"),
        (lambda m: gv.regions.train(m, [], progress=False), ValueError, "label_keys"),
        (lambda m: gv.regions.train(m, "cell_type", n_components=0, progress=False), ValueError, "n_components"),
        (lambda m: gv.regions.search(m, "type0", "l2r"), KeyError, "gv.regions.train"),
    ],
)
def test_bad_training_and_queries(call, error, message):
    universe, sets, metadata = gv.datasets.region_sets(n_labels=2, sets_per_label=3, universe_size=800, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tokens = gv.regions.tokenize(sets, universe, metadata=metadata)
    with pytest.raises(error, match=message):
        call(tokens)


def test_bad_search_arguments(trained):
    model = trained[0]
    with pytest.raises(ValueError, match="Unknown search kind"):
        gv.regions.search(model, "type0", "x2y")
    with pytest.raises(KeyError, match="Unknown label"):
        gv.regions.search(model, "type9", "l2r")
    with pytest.raises(KeyError, match="neither a set"):
        gv.regions.search(model, "nothing.bed", "r2l")


def test_bedspace_cli(tmp_path, capsys):
    from geneverse.cli import main

    universe, sets, metadata = gv.datasets.region_sets(n_labels=2, sets_per_label=6, universe_size=1000, seed=4)
    folder = tmp_path / "beds"
    folder.mkdir()
    for name, frame in sets.items():
        frame.to_csv(folder / f"{name}.bed", sep="\t", header=False, index=False)
    universe.to_csv(tmp_path / "universe.bed", sep="\t", header=False, index=False)
    metadata.assign(file=[f"{n}.bed" for n in metadata.index]).to_csv(tmp_path / "meta.csv", index=False)
    tokens, model = tmp_path / "tokens.h5ad", tmp_path / "model.h5ad"
    common = ["--no-progress"]
    assert main(["bedspace", "preprocess", "--input", str(folder), "--universe", str(tmp_path / "universe.bed"),
                 "--metadata", str(tmp_path / "meta.csv"), "--output", str(tokens)]) == 0  # fmt: skip
    assert main(["bedspace", "train", "--input", str(tokens), "--labels", "cell_type", "--dim", "16", "--epochs", "5",
                 "--output", str(model), *common]) == 0  # fmt: skip
    assert main(["bedspace", "distances", "--input", str(model), "-t", "r2r", "--output", str(tmp_path / "d.tsv")]) == 0
    distances = pd.read_csv(tmp_path / "d.tsv", sep="\t", index_col=0)
    assert distances.shape == (12, 12)
    query = folder / "type1_set000.bed"
    code = main(["bedspace", "search", "--input", str(model), "-t", "r2l", "-q", str(query), "-n", "2",
                 "--output", str(tmp_path / "s.tsv"), "--plot", str(tmp_path / "s.png")])  # fmt: skip
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 0
    assert pd.read_csv(tmp_path / "s.tsv", sep="\t").label[0] == "cell_type:type1"
    assert main(["bedspace", "train", "--input", str(tokens), "--output", str(model)]) == 2
    assert "--labels" in capsys.readouterr().err
