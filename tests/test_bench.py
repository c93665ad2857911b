"""gv.bench on hand-made data with known answers, and against sklearn references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import geneverse as gv


def test_read_gmt(tmp_path):
    path = tmp_path / "sets.gmt"
    path.write_text("SET_A\tdesc\tg1\tg2\tg2\t\nSET_B\thttp://x\tg3\n\n")
    assert gv.bench.read_gmt(path) == {"SET_A": ["g1", "g2"], "SET_B": ["g3"]}
    (tmp_path / "bad.gmt").write_text("SET_A\tonly a description\n")
    with pytest.raises(ValueError, match="needs a name, a description and genes"):
        gv.bench.read_gmt(tmp_path / "bad.gmt")
    (tmp_path / "empty.gmt").write_text("\n")
    with pytest.raises(ValueError, match="holds no gene set"):
        gv.bench.read_gmt(tmp_path / "empty.gmt")


def genes_with_a_planted_set(n_genes: int = 200, n_members: int = 30, seed: int = 0) -> AnnData:
    rng = np.random.default_rng(seed)
    adata = AnnData(np.zeros((3, n_genes), dtype=np.float32))
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    member = np.zeros(n_genes, dtype=bool)
    member[rng.choice(n_genes, n_members, replace=False)] = True
    informative = rng.standard_normal((n_genes, 8))
    informative[member, 0] += 6.0  # members stand apart along one axis
    adata.varm["X_good"] = informative
    adata.varm["X_noise"] = rng.standard_normal((n_genes, 8))
    adata.uns["members"] = list(adata.var_names[member])
    return adata


def test_gene_set_auroc_known_answers():
    adata = genes_with_a_planted_set()
    sets = {"planted": adata.uns["members"], "too_small": adata.uns["members"][:3]}
    table = gv.bench.gene_set_auroc(adata, sets, ["X_good", "X_noise"], min_genes=10)
    assert set(table["gene_set"]) == {"planted"}  # the 3-gene set is skipped
    auroc = table.set_index("embedding")["auroc"]
    assert auroc["X_good"] > 0.99
    assert abs(auroc["X_noise"] - 0.5) < 0.2 and abs(auroc["random"] - 0.5) < 0.2
    assert table["n_genes"].iloc[0] == 30 and table["n_background"].iloc[0] == 170


def test_gene_set_auroc_equals_sklearn_reference():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.preprocessing import StandardScaler

    adata = genes_with_a_planted_set(seed=3)
    adata.varm["X_good"][:, 1:] *= 5  # make the task harder than perfect
    table = gv.bench.gene_set_auroc(adata, {"planted": adata.uns["members"]}, "X_good", random_baseline=False, seed=7)
    labels = np.isin(adata.var_names, adata.uns["members"])
    features = StandardScaler().fit_transform(adata.varm["X_good"])
    scores = cross_val_predict(
        LogisticRegression(class_weight="balanced", max_iter=1000),
        features,
        labels,
        cv=StratifiedKFold(5, shuffle=True, random_state=7),
        method="decision_function",
    )
    assert table["auroc"].iloc[0] == pytest.approx(roc_auc_score(labels, scores))


def test_gene_set_auroc_bad_input(tmp_path):
    adata = genes_with_a_planted_set()
    with pytest.raises(KeyError, match="No gene vectors varm\\['X_missing'\\]"):
        gv.bench.gene_set_auroc(adata, {"s": adata.uns["members"]}, "X_missing")
    with pytest.raises(ValueError, match="No gene set has at least min_genes"):
        gv.bench.gene_set_auroc(adata, {"s": ["unknown"] * 20}, "X_good")
    with pytest.raises(ValueError, match="n_folds must be at least 2"):
        gv.bench.gene_set_auroc(adata, {"s": adata.uns["members"]}, "X_good", n_folds=1)
    gmt = tmp_path / "s.gmt"
    gmt.write_text("planted\tx\t" + "\t".join(adata.uns["members"]) + "\n")
    assert gv.bench.gene_set_auroc(adata, gmt, "X_good")["auroc"].iloc[0] > 0.99  # a GMT path works too


def test_knn_accuracy_hand_made():
    # two far-apart groups of 5; one cell of group A carries label b: only it is misjudged
    rep = np.vstack([np.arange(5)[:, None] * [1.0, 0.0], 100 + np.arange(5)[:, None] * [1.0, 0.0]])
    labels = np.array(["a", "a", "b", "a", "a", "b", "b", "b", "b", "b"])
    assert gv.bench.knn_accuracy(rep, labels, k=3) == pytest.approx(0.9)
    # duplicated points: the cell itself may not come first among its neighbours, yet it never votes
    pairs = np.array([[0.0], [0.0], [10.0], [10.0]])
    assert gv.bench.knn_accuracy(pairs, np.array(["a", "b", "b", "a"]), k=1) == 0.0
    with pytest.raises(ValueError, match="needs more than"):
        gv.bench.knn_accuracy(rep[:3], labels[:3], k=3)


def test_cell_scores_known_answers():
    rng = np.random.default_rng(0)
    labels = np.repeat(["t", "b", "mono"], 40)
    centres = {"t": [10.0, 0, 0], "b": [0, 10.0, 0], "mono": [0, 0, 10.0]}
    adata = AnnData(np.zeros((120, 1), dtype=np.float32), obs=pd.DataFrame({"cell_type": labels}))
    adata.obs_names = [f"c{i}" for i in range(120)]
    adata.obsm["X_clear"] = np.array([centres[c] for c in labels]) + rng.normal(0, 0.5, (120, 3))
    adata.obsm["X_shuffled"] = rng.permutation(adata.obsm["X_clear"])
    table = gv.bench.cell_scores(adata, "cell_type", ["X_clear", "X_shuffled"], kmeans_seeds=2, resolution=0.2)
    clear, shuffled = table.loc["X_clear"], table.loc["X_shuffled"]
    assert clear["kmeans_ari"] == pytest.approx(1.0) and clear["kmeans_ami"] == pytest.approx(1.0)
    assert clear["knn_accuracy"] == 1.0 and clear["leiden_ari"] > 0.9
    assert abs(shuffled["kmeans_ari"]) < 0.1 and shuffled["knn_accuracy"] < 0.6
    assert list(adata.obs.columns) == ["cell_type"] and set(adata.obsm) == {"X_clear", "X_shuffled"}  # untouched


def test_cell_scores_bad_input():
    adata = AnnData(np.zeros((20, 1), dtype=np.float32), obs=pd.DataFrame({"one": ["x"] * 20}))
    adata.obs_names = [f"c{i}" for i in range(20)]
    adata.obsm["X_nan"] = np.full((20, 2), np.nan)
    with pytest.raises(KeyError, match="No obs column 'label'"):
        gv.bench.cell_scores(adata, "label", "X_nan")
    with pytest.raises(ValueError, match="at least two labels"):
        gv.bench.cell_scores(adata, "one", "X_nan")
    adata.obs["two"] = ["x", "y"] * 10
    with pytest.raises(ValueError, match="NaN or infinite"):
        gv.bench.cell_scores(adata, "two", "X_nan")
    with pytest.raises(KeyError, match="No cell representation"):
        gv.bench.cell_scores(adata, "two", "X_missing")
