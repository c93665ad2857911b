"""The geneverse command line, run in-process and as the installed script."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from geneverse.cli import main


def test_help_for_every_command(capsys):
    for command in ([], ["demo"], ["coexpression"], ["targets"], ["cache"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
    assert "coexpression" in capsys.readouterr().out


def test_targets_and_cache(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    for name in ("mi", "pearson", "spearman", "jaccard", "cosine", "cooccurrence", "ppmi"):
        assert name in out
    assert main(["cache", "info"]) == 0
    assert main(["cache", "clear"]) == 0


def test_coexpression_command(adata, tmp_path, capsys):
    path, output, table = tmp_path / "in.h5ad", tmp_path / "out.h5ad", tmp_path / "m.tsv"
    adata.write_h5ad(path)
    code = main(["coexpression", str(path), "--target", "pearson", "--output", str(output), "--table", str(table)])
    assert code == 0 and table.exists()
    result = ad.read_h5ad(output)
    np.testing.assert_allclose(result.varp["gv_pearson"], np.corrcoef(adata.X.toarray().T), atol=1e-6)
    assert "gene_a" in capsys.readouterr().out


def test_errors_are_reported_not_raised(adata, tmp_path, capsys):
    path = tmp_path / "in.h5ad"
    adata.write_h5ad(path)
    assert main(["coexpression", str(path), "--layer", "missing", "--no-progress"]) == 2
    assert "Layer 'missing'" in capsys.readouterr().err


def test_demo_writes_tables_and_plot(demo_result):
    result = demo_result
    for path in result["paths"].values():
        assert path.exists() and path.stat().st_size > 0
    pairs = result["top_pairs"]
    # MHC class II genes are the strongest co-expressed module in PBMCs
    assert pairs.iloc[:5].apply(lambda r: r.gene_a.startswith("HLA-") or r.gene_b.startswith("HLA-"), axis=1).all()
    # known partners: B-cell receptor chains and T-cell receptor CD3 chains
    partners = result["marker_partners"].set_index("gene")["mi"]
    assert "CD79B" in partners["MS4A1"] and "CD79A" in partners["MS4A1"]
    assert "CD3E" in partners["CD3D"]
    # the embedding: B-cell genes around MS4A1, T-cell genes for the analogy and the pairs' second genes
    neighbours = result["neighbours"].set_index("gene")["nearest_genes"]
    b_cell = {"BANK1", "CD79A", "CD79B", "FCRLA", "BLK", "CD37", "CD19", "CD22", "TCL1A", "VPREB3", "FCER2"}
    assert len(b_cell & set(neighbours["MS4A1"].split(", "))) >= 3
    t_cell = {"CD3D", "CD3E", "CD3G", "LCK", "CD2", "IL32", "GIMAP7", "LAT", "CD7", "IL7R", "MAL"}
    assert len(t_cell & set(result["analogy"].gene)) >= 3
    assert set(result["pairs_like"].gene_y) <= t_cell
    # cell types from the shipped markers: B cells are called B, monocytes Monocyte
    cell_types = result["cell_types"]
    assert cell_types.loc["CD19+ B"].idxmax() == "B" and cell_types.loc["CD14+ Monocyte"].idxmax() == "Monocyte"
    # programs: a T-cell program led by T-cell genes, and monocytes score highest on a myeloid program
    programs = result["programs"].set_index("program")["central_genes"]
    assert any(len(t_cell & set(genes.split(", "))) >= 2 for genes in programs)
    best = result["program_by_population"].set_index("bulk_label")["top_program"]
    assert best["CD14+ Monocyte"] != best["CD19+ B"]


@pytest.mark.skipif(shutil.which("geneverse") is None, reason="console script not on PATH")
def test_installed_script():
    result = subprocess.run(["geneverse", "targets"], capture_output=True, text=True, check=True)
    assert "mi" in result.stdout


@pytest.fixture
def embedded_file(tmp_path):
    import geneverse as gv

    from .test_queries import royal

    adata = royal()
    adata.var["description"] = [f"about {n}" for n in adata.var_names]
    path = tmp_path / "royal.h5ad"
    adata.write_h5ad(path)
    assert gv.tl.similar(adata, "king", n=1).gene[0] == "prince"
    return path


def test_query_commands(embedded_file, tmp_path, capsys):
    report = tmp_path / "report.md"
    assert main(["similar", str(embedded_file), "king", "--n", "2", "--markdown", str(report)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[0] == "prince"
    assert "| prince |" in report.read_text() and "about prince" in report.read_text()
    assert main(["analogy", str(embedded_file), "king", "man", "woman", "--n", "1"]) == 0
    assert "queen" in capsys.readouterr().out
    assert main(["pairs", str(embedded_file), "king", "man", "--n", "3"]) == 0
    assert "gene_x" in capsys.readouterr().out
    assert main(["similar", str(embedded_file), "kingg"]) == 2
    assert "Close matches" in capsys.readouterr().err


def test_interactive_mode_reads_stdin_until_eof(embedded_file, tmp_path):
    report = tmp_path / "session.md"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "geneverse.cli",
            "analogy",
            str(embedded_file),
            "--interactive",
            "--markdown",
            str(report),
        ],
        input="king man woman\nnot enough\nking man nobody\n\nqueen woman man\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.count("gene") >= 2  # two answered queries
    assert "queen" in result.stdout and "expected 3 gene(s)" in result.stderr and "nobody" in result.stderr
    assert report.read_text().count("## analogy") == 2


def test_embed_command(adata, tmp_path, capsys):
    path, output = tmp_path / "in.h5ad", tmp_path / "out.h5ad"
    adata.write_h5ad(path)
    code = main(
        ["embed", str(path), "--target", "pearson", "--n-components", "4", "--epochs", "20", "--output", str(output),
         "--no-progress"]
    )  # fmt: skip
    assert code == 0 and "trained varm['X_gv']" in capsys.readouterr().out
    result = ad.read_h5ad(output)
    assert result.varm["X_gv"].shape == (adata.n_vars, 4) and "gv_pearson" in result.varp


def test_annotate_command(tmp_path, capsys):
    import pandas as pd

    import geneverse as gv

    data = gv.datasets.synthetic(600, 80, 3, seed=0, genes_per_program=15)
    gv.tl.coexpression(data, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(data, progress=False)
    path = tmp_path / "in.h5ad"
    data.write_h5ad(path)
    programs = data.var["program"].astype(str)
    rows = [(f"type{p}", g) for p in range(3) for g in data.var_names[(programs == f"P{p}").to_numpy()][:5]]
    markers = tmp_path / "markers.csv"
    pd.DataFrame(rows, columns=["cell_type", "gene"]).to_csv(markers, index=False)
    assert main(["annotate", str(path), "--markers", str(markers), "--no-progress"]) == 0  # the recorded layer
    assert "obs['gv_cell_type']: type" in capsys.readouterr().out
    result = ad.read_h5ad(path)  # written over the input, atomically
    assert "X_gv_cells" not in result.obsm and "gv_cell_type_probabilities" in result.obsm  # read the expression
    assert result.uns["gv"]["gv_cell_type"]["params"]["layer"] == "counts"
    assert result.uns["gv"]["gv_cell_type"]["params"]["refine"]  # the default: self-trained on the expression
    assert (result.obs["gv_cell_type"].astype(str) == result.obs["cell_type"].astype(str)).mean() > 0.8
    assert main(["annotate", str(path), "--markers", str(markers), "--no-refine", "--no-progress"]) == 0
    assert not ad.read_h5ad(path).uns["gv"]["gv_cell_type"]["params"]["refine"]
    # from the cell vectors, embedded first as they are absent
    assert main(["annotate", str(path), "--markers", str(markers), "--cells-key", "X_other"]) == 2
    assert "--cells-key is read by --method vectors" in capsys.readouterr().err
    assert main(["annotate", str(path), "--markers", str(markers), "--method", "vectors", "--layer", "counts"]) == 0
    result = ad.read_h5ad(path)
    assert "X_gv_cells" in result.obsm and result.uns["gv"]["gv_cell_type"]["params"]["method"] == "vectors"
    assert (result.obs["gv_cell_type"].astype(str) == result.obs["cell_type"].astype(str)).mean() > 0.8


def test_batch_correct_command(tmp_path, capsys):
    import geneverse as gv

    data = gv.datasets.synthetic(600, 80, 3, seed=0, genes_per_program=15, n_batches=2)
    gv.tl.coexpression(data, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(data, progress=False)
    path, output = tmp_path / "in.h5ad", tmp_path / "out.h5ad"
    data.write_h5ad(path)
    code = main(
        ["batch-correct", str(path), "--batch-key", "batch", "--layer", "counts", "--output", str(output),
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    before, after = (float(x) for x in printed.split("neighbours ")[1].split(" of")[0].split(" -> "))
    assert after > before + 0.3, printed
    result = ad.read_h5ad(output)
    assert {"X_gv_cells", "X_gv_corrected"} <= set(result.obsm)
    assert result.uns["gv"]["X_gv_corrected"]["params"]["batch_key"] == "batch"
    assert "X_gv_corrected" not in ad.read_h5ad(path).obsm  # the input is untouched with --output
    code = main(["batch-correct", str(output), "--batch-key", "batch", "--capture", "--no-progress"])
    assert code == 0  # the cells embedded again from counts freed of each batch's capture factors
    params = ad.read_h5ad(output).uns["gv"]["X_gv_corrected"]["params"]
    assert params["capture"] and params["layer"] == "counts"
    code = main(
        ["coexpression", str(path), "--target", "pearson", "--batch-key", "batch", "--no-cache", "--no-progress"]
    )
    assert code == 0
    record = ad.read_h5ad(path).uns["gv"]["gv_pearson"]
    assert record["batch_key"] == "batch" and list(record["batches"]) == ["batch0", "batch1"]


def _bad_arguments(folder):
    """Each: arguments, a phrase of the one-line error. ``IN`` is a valid .h5ad input."""
    missing = folder / "missing"
    return [
        (["coexpression", "IN", "--output", str(folder)], "is a folder"),
        (["coexpression", "IN", "--table", str(missing / "m.tsv")], "does not exist"),
        (["coexpression", "IN", "--top", "0"], "--top must be a positive integer"),
        (["coexpression", "IN", "--n-bins", "-3"], "--n-bins must be a positive integer"),
        (["coexpression", str(missing / "x.h5ad")], "no such file"),
        (["coexpression", str(folder)], "is a folder"),
        (["coexpression", "TEXT"], "not a readable .h5ad"),
        (["embed", "IN", "--output", str(missing / "o.h5ad")], "does not exist"),
        (["embed", "IN", "--n-components", "0"], "--n-components must be a positive integer"),
        (["embed", "IN", "--seed", "-1"], "--seed must be a non-negative integer"),
        (["similar", "IN", "g0", "--n", "0"], "--n must be a positive integer"),
        (["similar", "IN", "g0", "--markdown", str(folder)], "is a folder"),
        (["analogy", "IN", "g0"], "needs 3 gene(s)"),
        (["similar", "TEXT", "g0"], "not a readable .h5ad"),
        (["bedspace", "search", "--input", "IN"], "needs --query"),
        (["bedspace", "train", "--input", "IN", "--output", str(folder / "m.h5ad")], "needs --labels"),
        (["bedspace", "train", "--input", "IN", "--labels", "x"], "needs --output"),
        (["bedspace", "train", "--input", "IN", "--labels", "x", "--output", str(folder)], "is a folder"),
        (["bedspace", "train", "--input", "IN", "--labels", "x", "--output", "o.h5ad", "--lr", "inf"], "--lr"),
        (["bedspace", "preprocess", "--input", str(missing), "--universe", "u.bed", "--output", "o.h5ad"], "folder"),
        (["bedspace", "search", "--input", "IN", "-q", "x", "--plot", str(missing / "p.png")], "does not exist"),
        (["bedspace", "distances", "--input", "IN"], "needs --output"),
        (["coexpression", "IN", "--table", "IN"], "its own name"),
        (["demo", "--out", "TEXT"], "is a file"),
        (["annotate", "IN", "--markers", str(missing / "m.csv")], "no such file"),
        (["annotate", "IN", "--markers", "pbmc", "--min-probability", "2"], "--min-probability must be in [0, 1]"),
        (["annotate", "IN", "--markers", "pbmc", "--method", "vectors", "--no-refine"], "--no-refine is read by"),
        (["batch-correct", "IN", "--batch-key", "nope"], "No obs column 'nope'"),
        (["coexpression", "IN", "--batch-key", "nope"], "No obs column 'nope'"),
        (["batch-correct", str(missing / "x.h5ad"), "--batch-key", "b"], "no such file"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_arguments(Path(".")))))
def test_bad_arguments_fail_in_one_line_before_touching_the_input(case, adata, tmp_path, capsys, monkeypatch):
    import geneverse as gv

    path, text = tmp_path / "in.h5ad", tmp_path / "notes.h5ad"
    adata.write_h5ad(path)
    text.write_text("not an h5ad file\n")
    before = path.read_bytes()
    arguments, phrase = _bad_arguments(tmp_path)[case]
    arguments = [str(path) if a == "IN" else str(text) if a == "TEXT" else a for a in arguments]

    def no_computation(*args, **kwargs):
        raise AssertionError("computed before checking the arguments")

    for name in ("coexpression", "embed", "similar", "analogy"):
        monkeypatch.setattr(gv.tl, name, no_computation)
    monkeypatch.setattr(gv.regions, "train", no_computation)
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("geneverse: error:"), error
    assert phrase in error
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "gv-cache") == ["in.h5ad", "notes.h5ad"]
