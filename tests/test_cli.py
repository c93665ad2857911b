"""The geneverse command line, run in-process and as the installed script."""

from __future__ import annotations

import shutil
import subprocess

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


def test_demo_writes_tables_and_plot(tmp_path):
    from geneverse._demo import run_demo

    result = run_demo(tmp_path / "demo", progress=False)
    for path in result["paths"].values():
        assert path.exists() and path.stat().st_size > 0
    pairs = result["top_pairs"]
    # MHC class II genes are the strongest co-expressed module in PBMCs
    assert pairs.iloc[:5].apply(lambda r: r.gene_a.startswith("HLA-") or r.gene_b.startswith("HLA-"), axis=1).all()
    # known partners: B-cell receptor chains and T-cell receptor CD3 chains
    partners = result["marker_partners"].set_index("gene")["all_cells_mi"]
    assert "CD79B" in partners["MS4A1"] and "CD79A" in partners["MS4A1"]
    assert "CD3E" in partners["CD3D"]


@pytest.mark.skipif(shutil.which("geneverse") is None, reason="console script not on PATH")
def test_installed_script():
    result = subprocess.run(["geneverse", "targets"], capture_output=True, text=True, check=True)
    assert "mi" in result.stdout
