"""Files survive failures: every writer is atomic, and a failure midway leaves the previous file intact.

Failures are injected three ways: an exception from the filesystem layer (fsync raising ENOSPC
after the new content was written), a file-size limit in a subprocess (the write itself fails
midway with EFBIG, as on a full disk), and SIGKILL / SIGINT delivered to a subprocess while its
write is in progress. After each, the previous file must be byte-identical, or (after success)
fully replaced and readable.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

import geneverse as gv
from geneverse import _files
from geneverse.cli import main

SRC = Path(gv.__file__).parent


def trained(n_genes: int = 12, seed: int = 0) -> AnnData:
    rng = np.random.default_rng(seed)
    adata = AnnData(X=sp.csr_matrix(rng.poisson(1.0, size=(60, n_genes)).astype(np.float32)))
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    adata.varm["X_gv"] = rng.normal(size=(n_genes, 4)).astype(np.float32)
    adata.varp["gv_pearson"] = np.corrcoef(rng.normal(size=(n_genes, 30))).astype(np.float32)
    return adata


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if _files.is_temporary(p)]


# ---------------------------------------------------------------- every writer, failing midway

WRITERS = {
    "h5ad": ("out.h5ad", lambda a, p: gv.io.write_h5ad(a, p)),
    "embeddings_txt": ("v.txt", lambda a, p: gv.io.write_embeddings(a, p)),
    "embeddings_csv": ("v.csv", lambda a, p: gv.io.write_embeddings(a, p)),
    "embeddings_tsv": ("v.tsv", lambda a, p: gv.io.write_embeddings(a, p)),
    "embeddings_pkl": ("v.pkl", lambda a, p: gv.io.write_embeddings(a, p)),
    "embeddings_npy": ("v.npy", lambda a, p: gv.io.write_embeddings(a, p)),
    "coexpression_table": ("m.tsv", lambda a, p: gv.io.write_coexpression(a, p, "gv_pearson")),
    "plot": ("heat.png", lambda a, p: gv.pl.coexpression(a, "gv_pearson", n_genes=6, show=False, save=p)),
}


def old_content(path: Path) -> bytes:
    """A previous, valid file of the same kind (written with other data), returned byte for byte."""
    WRITERS_BY_NAME = {name: writer for name, writer in WRITERS.values()}
    WRITERS_BY_NAME[path.name](trained(seed=1), path)
    return path.read_bytes()


@pytest.mark.parametrize("kind", list(WRITERS))
def test_exception_from_the_filesystem_keeps_the_previous_file(kind, tmp_path, monkeypatch):
    name, write = WRITERS[kind]
    path = tmp_path / name
    before = old_content(path)
    genes_before = path.with_suffix(".genes.txt").read_bytes() if kind == "embeddings_npy" else None

    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write(trained(seed=2), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    if genes_before is not None:
        assert path.with_suffix(".genes.txt").read_bytes() == genes_before
    assert temporaries(tmp_path) == []
    # and when nothing fails, the file is fully replaced and readable
    write(trained(seed=2), path)
    assert path.read_bytes() != before and temporaries(tmp_path) == []
    if kind.startswith("embeddings"):
        target = trained(seed=2)
        gv.io.read_embeddings(target, path, key_added="back", allow_pickle=True)
        np.testing.assert_allclose(target.varm["back"], target.varm["X_gv"], rtol=1e-6)
    if kind == "h5ad":
        np.testing.assert_array_equal(ad.read_h5ad(path).varm["X_gv"], trained(seed=2).varm["X_gv"])


def _run_limited(script: str, limit: int, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter whose files cannot grow beyond ``limit`` bytes (a full disk)."""
    prelude = textwrap.dedent(
        f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG raised as OSError instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


LIMITED_KINDS = ["embeddings_tsv", "embeddings_npy", "coexpression_table", "plot", "h5ad"]  # h5ad last: see below


def test_file_size_limit_midway_keeps_the_previous_file(tmp_path):
    """One subprocess whose files cannot grow past the previous files' size (a full disk) runs every writer."""
    paths = {kind: tmp_path / WRITERS[kind][0] for kind in LIMITED_KINDS}
    before = {kind: old_content(path) for kind, path in paths.items()}
    script = f"""
        import numpy as np, scipy.sparse as sp
        from anndata import AnnData
        import matplotlib; matplotlib.use("Agg")
        import geneverse as gv
        rng = np.random.default_rng(5)
        n = 250
        adata = AnnData(X=sp.csr_matrix(rng.poisson(1.0, size=(50, n)).astype(np.float32)))
        adata.var_names = [f"gene{{i}}" for i in range(n)]
        adata.varm["X_gv"] = rng.normal(size=(n, 64)).astype(np.float32)
        adata.varp["gv_pearson"] = rng.normal(size=(n, n)).astype(np.float32)
        writers = {{
            "h5ad": lambda p: gv.io.write_h5ad(adata, p),
            "embeddings_tsv": lambda p: gv.io.write_embeddings(adata, p),
            "embeddings_npy": lambda p: gv.io.write_embeddings(adata, p),
            "coexpression_table": lambda p: gv.io.write_coexpression(adata, p, "gv_pearson"),
            "plot": lambda p: gv.pl.coexpression(adata, "gv_pearson", n_genes=120, show=False, save=p),
        }}
        for kind, path in { ({k: str(v) for k, v in paths.items()})!r}.items():
            try:
                writers[kind](path)
            except OSError as error:
                print(kind, "failed:", error, flush=True)
            else:
                print(kind, "no failure", flush=True)
        """
    result = _run_limited(script, max(len(b) for b in before.values()) + 2048, tmp_path)
    for kind, path in paths.items():
        assert path.read_bytes() == before[kind], kind
    lines = result.stdout.splitlines()
    for kind in LIMITED_KINDS[:-1]:
        assert f"{kind} failed:" in result.stdout, result.stdout + result.stderr[-2000:]
    if result.returncode < 0:
        # h5py can crash (SIGSEGV) on EFBIG: like a killed process, it leaves only an orphan
        assert not any(line.startswith("h5ad") for line in lines)
        assert all(p.name.startswith(".out.h5ad.") for p in temporaries(tmp_path))
    else:
        assert "h5ad failed:" in result.stdout
        assert temporaries(tmp_path) == []


SLOW_WRITE = """
import os, sys, time
import numpy as np, scipy.sparse as sp
from anndata import AnnData
import matplotlib; matplotlib.use("Agg")
import geneverse as gv
from geneverse import _files
from geneverse.cli import main
marker, path, kind = sys.argv[1:4]
real_fsync = os.fsync
def slow_fsync(descriptor):  # the new content is in the temporary file, not yet in place
    open(marker, "w").close()
    time.sleep(60)
    real_fsync(descriptor)
_files.os.fsync = slow_fsync
rng = np.random.default_rng(3)
adata = AnnData(X=sp.csr_matrix(rng.poisson(1.0, size=(40, 30)).astype(np.float32)))
adata.var_names = [f"g{i}" for i in range(30)]
adata.varm["X_gv"] = rng.normal(size=(30, 4)).astype(np.float32)
adata.varp["gv_pearson"] = np.corrcoef(rng.normal(size=(30, 20))).astype(np.float32)
if kind == "cli":
    main(["coexpression", path, "--target", "pearson", "--no-progress", "--no-cache"])
elif kind == "h5ad":
    gv.io.write_h5ad(adata, path)
elif kind == "embeddings_npy":
    gv.io.write_embeddings(adata, path)
elif kind == "coexpression_table":
    gv.io.write_coexpression(adata, path, "gv_pearson")
elif kind == "plot":
    gv.pl.coexpression(adata, "gv_pearson", n_genes=10, show=False, save=path)
"""


@pytest.mark.parametrize(
    ("kind", "how"),
    [
        ("h5ad", signal.SIGKILL),
        ("h5ad", signal.SIGINT),
        ("embeddings_npy", signal.SIGKILL),
        ("cli", signal.SIGKILL),
    ],
)
def test_killed_or_interrupted_during_the_write_keeps_the_previous_file(kind, how, tmp_path):
    if kind == "cli":  # the CLI writing its result back into its input
        path = _h5ad(tmp_path)
        before = path.read_bytes()
    else:
        path = tmp_path / WRITERS[kind][0]
        before = old_content(path)
    others = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p != path}
    marker = tmp_path / "writing"
    process = subprocess.Popen([sys.executable, "-c", SLOW_WRITE, str(marker), str(path), kind], cwd=tmp_path)
    deadline = time.monotonic() + 90
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the writer never reached its write"
    assert len(temporaries(tmp_path)) == 1  # the new version exists only as a temporary file
    process.send_signal(how)
    process.wait(timeout=30)
    assert path.read_bytes() == before
    assert all(p.read_bytes() == content for p, content in others.items())  # e.g. the .genes.txt
    left = temporaries(tmp_path)
    if how == signal.SIGINT:
        assert left == []  # KeyboardInterrupt: the temporary file is cleaned up
    else:
        assert len(left) == 1  # SIGKILL: an orphan, found once it is old enough
        assert _files.orphans(tmp_path) == []
        os.utime(left[0], (time.time() - 2 * _files.ORPHAN_AGE,) * 2)
        assert _files.orphans(tmp_path) == left


# ---------------------------------------------------------------- the CLI's in-place writes


def _h5ad(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    adata = AnnData(X=sp.csr_matrix(rng.poisson(1.0, size=(80, 40)).astype(np.float32)))
    adata.var_names = [f"g{i}" for i in range(40)]
    path = tmp_path / "in.h5ad"
    adata.write_h5ad(path)
    return path


def test_cli_in_place_write_that_fails_leaves_the_input_intact(tmp_path, monkeypatch, capsys):
    path = _h5ad(tmp_path)
    before = path.read_bytes()
    script = f"""
        import sys
        from geneverse.cli import main
        sys.exit(main(["coexpression", {str(path)!r}, "--target", "pearson", "--no-progress", "--no-cache"]))
        """
    # the result (with a 40 x 40 varp) is larger than the input: the write fails midway (a full disk)
    result = _run_limited(script, len(before) + 1024, tmp_path)
    assert result.returncode != 0
    assert path.read_bytes() == before
    ad.read_h5ad(path)

    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files.os, "fsync", full_disk)
    assert main(["coexpression", str(path), "--target", "pearson", "--no-progress", "--no-cache"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("geneverse: error:") and "No space left" in error
    assert path.read_bytes() == before
    assert temporaries(tmp_path) == [] or result.returncode < 0


def test_cli_in_place_write_with_the_file_open_elsewhere(tmp_path):
    path = _h5ad(tmp_path)
    backed = ad.read_h5ad(path, backed="r")  # another reader holds the file open
    assert main(["coexpression", str(path), "--target", "pearson", "--no-progress"]) == 0
    assert backed.X[0:2].shape == (2, 40)  # the reader still sees its (old) file
    assert "gv_pearson" in ad.read_h5ad(path).varp
    backed.file.close()


def test_write_h5ad_refuses_to_replace_a_backed_objects_own_file(tmp_path):
    path = _h5ad(tmp_path)
    backed = ad.read_h5ad(path, backed="r")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="backed"):
        gv.io.write_h5ad(backed, path)
    backed.file.close()
    assert path.read_bytes() == before


# ---------------------------------------------------------------- the helper itself


def test_atomic_path_keeps_mode_follows_links_and_checks_the_target(tmp_path):
    target = tmp_path / "data.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    _files.write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o640
    with pytest.raises(ValueError, match="is a folder"):
        _files.write_text(tmp_path, "x")
    with pytest.raises(ValueError, match="does not exist"):
        _files.write_text(tmp_path / "missing" / "x.txt", "x")
    with pytest.raises(ZeroDivisionError), _files.atomic_open(target) as handle:
        handle.write("partial")
        raise ZeroDivisionError
    assert target.read_text() == "new" and temporaries(tmp_path) == []


def test_no_writer_bypasses_the_atomic_helper():
    """Every file the package writes goes through geneverse._files (checked in the source)."""
    direct = re.compile(
        r"\.to_csv\(\s*+(?!buffer\b)|\.write_h5ad\(|\.write_h5mu\(|\.savefig\(|np\.save[z]?\(\s*+(?!buffer\b|file\b)"
        r"|\.write_text\(|\.write_bytes\(|(?<![\w.])open\([^)]*['\"][wa]b?['\"]"
    )
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "_files.py":
            continue
        text = path.read_text()
        for match in direct.finditer(text):
            number = text.count("\n", 0, match.start()) + 1
            offenders.append(f"{path.relative_to(SRC)}:{number}: {text.splitlines()[number - 1].strip()}")
    assert offenders == []


# ---------------------------------------------------------------- embeddings: files tied together


def test_npy_pair_from_different_writes_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "z.npy"
    gv.io.write_embeddings(trained(seed=1), path)
    genes_before = path.with_suffix(".genes.txt").read_bytes()

    def crash(*args, **kwargs):
        raise OSError(errno.EIO, "crashed between the two files")

    monkeypatch.setattr(gv.io._embeddings, "write_text", crash)
    with pytest.raises(OSError, match="crashed"):
        gv.io.write_embeddings(trained(seed=2), path)
    monkeypatch.undo()
    assert path.with_suffix(".genes.txt").read_bytes() == genes_before  # old genes, new vectors
    with pytest.raises(ValueError, match="other vectors"):
        gv.io.read_embeddings(trained(), path)


def test_npy_validation_happens_before_any_file_is_touched(tmp_path):
    path = tmp_path / "z.npy"
    gv.io.write_embeddings(trained(seed=1), path)
    before = path.read_bytes(), path.with_suffix(".genes.txt").read_bytes()
    bad = trained(seed=2)
    bad.var_names = [f"g{i}\nx" for i in range(bad.n_vars)]
    with pytest.raises(ValueError, match="line breaks"):
        gv.io.write_embeddings(bad, path)
    assert (path.read_bytes(), path.with_suffix(".genes.txt").read_bytes()) == before


def test_npy_written_where_asked_with_any_suffix(tmp_path):
    path = gv.io.write_embeddings(trained(), tmp_path / "y.dat", format="npy")
    assert path == tmp_path / "y.dat" and path.exists() and not (tmp_path / "y.dat.npy").exists()
    back = trained()
    gv.io.read_embeddings(back, path, format="npy", key_added="back")
    np.testing.assert_allclose(back.varm["back"], back.varm["X_gv"])


def test_hand_made_gene_list_without_header_still_reads(tmp_path):
    np.save(tmp_path / "e.npy", np.eye(3, dtype=np.float32))
    (tmp_path / "e.genes.txt").write_text("g0\ng1\ng2\n")
    adata = trained(3)
    gv.io.read_embeddings(adata, tmp_path / "e.npy")
    np.testing.assert_array_equal(adata.varm["X_emb"], np.eye(3))


# ---------------------------------------------------------------- pickles


class _Exploit:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickles_are_opt_in_and_restricted(tmp_path):
    import pickle

    marker = tmp_path / "pwned"
    crafted = tmp_path / "genept.pkl"
    crafted.write_bytes(pickle.dumps({"g0": [1.0, 2.0], "g1": _Exploit(str(marker))}))
    with pytest.raises(ValueError, match="allow_pickle=True"):
        gv.io.read_embeddings(trained(), crafted)
    with pytest.raises(ValueError, match=r"refused"):
        gv.io.read_embeddings(trained(), crafted, allow_pickle=True)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_genept_style_pickles_load_when_allowed(protocol, tmp_path):
    import pickle

    rng = np.random.default_rng(0)
    table = {
        "g0": list(rng.normal(size=4)),  # GenePT: lists of floats
        "g1": rng.normal(size=4).astype(np.float32),  # numpy arrays
        "g2": tuple(np.float64(v) for v in rng.normal(size=4)),  # numpy scalars
    }
    path = tmp_path / "genept.pickle"
    path.write_bytes(pickle.dumps(table, protocol=protocol))
    adata = trained(3)
    gv.io.read_embeddings(adata, path, allow_pickle=True)
    np.testing.assert_allclose(adata.varm["X_emb"][1], table["g1"], rtol=1e-6)


# ---------------------------------------------------------------- names, ranges and escaping


def test_csv_round_trip_keeps_na_like_gene_names(tmp_path):
    names = ["NA", "None", "nan", "NaN", "null", "1", "1.0", "g"]
    adata = trained(len(names))
    adata.var_names = names
    for suffix in (".csv", ".tsv"):
        path = gv.io.write_embeddings(adata, tmp_path / f"e{suffix}")
        back = trained(len(names))
        back.var_names = names
        gv.io.read_embeddings(back, path, key_added="back")
        np.testing.assert_allclose(back.varm["back"], adata.varm["X_gv"], rtol=1e-6)


def test_empty_gene_names_are_refused(tmp_path):
    adata = trained(3)
    adata.var_names = ["a", "", "c"]
    with pytest.raises(ValueError, match="empty gene name"):
        gv.io.write_embeddings(adata, tmp_path / "e.tsv")
    assert not (tmp_path / "e.tsv").exists()
    (tmp_path / "hand.tsv").write_text("gene\t0\t1\na\t1\t2\n\t3\t4\n")
    with pytest.raises(ValueError, match="empty gene name"):
        gv.io.read_embeddings(trained(3), tmp_path / "hand.tsv")


def test_values_beyond_float32_are_refused_on_import(tmp_path):
    frame = pd.DataFrame([[1.0, 2.0], [1e39, 0.0]], index=["g0", "g1"])
    adata = trained(2)
    with pytest.raises(ValueError, match="float32"):
        gv.io.read_embeddings(adata, frame)
    assert "X_emb" not in adata.varm


def test_queries_on_huge_and_tiny_float64_vectors():
    adata = trained(20)
    base = adata.varm["X_gv"].astype(np.float64)
    expected = gv.tl.similar(adata, "g0", n=5)
    expected_pairs = gv.tl.similar_pairs(adata, "g0", "g1", n=5)
    for scale in (1e200, 1e-200):
        adata.varm["X_gv"] = base * scale
        got = gv.tl.similar(adata, "g0", n=5)
        assert got.gene.tolist() == expected.gene.tolist()
        np.testing.assert_allclose(got.similarity, expected.similarity, atol=1e-6)
        pairs = gv.tl.similar_pairs(adata, "g0", "g1", n=5)
        assert len(pairs) == 5
        assert pairs.iloc[:, :2].values.tolist() == expected_pairs.iloc[:, :2].values.tolist()
    adata.varm["X_gv"] = base * 1e200
    for metric in ("dot", "euclidean"):
        with pytest.raises(ValueError, match="too large"):
            gv.tl.similar(adata, "g0", metric=metric)


def test_similar_on_a_sparse_varm():
    adata = trained(10)
    dense = gv.tl.similar(adata, "g0", n=4)
    adata.varm["X_gv"] = sp.csr_matrix(adata.varm["X_gv"])
    pd.testing.assert_frame_equal(gv.tl.similar(adata, "g0", n=4), dense)


def test_markdown_escapes_html_and_links():
    table = pd.DataFrame(
        {
            "gene": ["<script>alert(1)</script>", "[x](javascript:alert(1))", "ENSG00000141510", "A|B"],
            "similarity": [0.9, 0.8, 0.7, 0.6],
            "description": ["<img src=x onerror=alert(1)>", "ok", "tumour protein p53", "**bold**"],
        }
    )
    text = gv.io.to_markdown(table)
    assert "<script>" not in text and "<img" not in text and "&lt;script&gt;" in text
    assert re.search(r"(?<!\\)\]\(javascript:", text) is None and "\\[x\\]" in text
    assert "[ENSG00000141510](https://www.proteinatlas.org/ENSG00000141510)" in text
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 4 for line in text.splitlines())  # A|B stays one cell
    assert "\\*\\*bold\\*\\*" in text


def test_duplicate_var_names_set_after_computing():
    adata = trained(6)
    gv.tl.coexpression(adata, "pearson", use_cache=False, progress=False)
    adata.var_names = ["same"] * adata.n_vars
    for call in (gv.io.coexpression_frame, gv.io.top_pairs):
        with pytest.raises(ValueError, match="var_names_make_unique"):
            call(adata, "gv_pearson")


def test_h5mu_and_suffixless_plots_are_written_atomically(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    import mudata as md

    mdata = md.MuData({"rna": trained(seed=1)})
    path = tmp_path / "d.h5mu"
    gv.io.write_h5ad(mdata, path)
    assert md.read_h5mu(path)["rna"].n_vars == 12
    before = path.read_bytes()

    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files.os, "fsync", full_disk)
    with pytest.raises(OSError):
        gv.io.write_h5ad(md.MuData({"rna": trained(seed=2)}), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and temporaries(tmp_path) == []
    ax = gv.pl.coexpression(trained(), "gv_pearson", n_genes=4, show=False, save=tmp_path / "plot")
    plt.close(ax.figure)
    assert (tmp_path / "plot").read_bytes()[:4] == b"\x89PNG"


def _stack_global(module: str, name: str) -> bytes:
    """Protocol 4 STACK_GLOBAL for ``module.name`` (a dotted name is looked up attribute by attribute)."""
    return b"\x8c" + bytes([len(module)]) + module.encode() + b"\x8c" + bytes([len(name)]) + name.encode() + b"\x93"


@pytest.mark.parametrize(
    ("module", "name"),
    [("numpy", "dtypes.__builtins__.__getitem__"), ("numpy.dtypes", "__builtins__.__getitem__"), ("builtins", "eval")],
)
def test_restricted_unpickler_refuses_dotted_and_other_names(module, name, tmp_path):
    marker = tmp_path / "pwned"
    command = f"__import__('os').system('touch {marker}') or {{}}"
    payload = (
        b"\x80\x04"
        + _stack_global(module, name)
        + (b"\x8c\x04eval\x85R" if name.endswith("__getitem__") else b"")
        + b"\x8c"
        + bytes([len(command)])
        + command.encode()
        + b"\x85R."
    )
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match="refused"):
        gv.io.read_embeddings(trained(), path, allow_pickle=True)
    assert not marker.exists()


def test_backed_object_points_at_the_file_written(tmp_path):
    path = _h5ad(tmp_path)
    backed = ad.read_h5ad(path, backed="r")
    copy = tmp_path / "copy.h5ad"
    gv.io.write_h5ad(backed, copy)
    assert Path(backed.filename) == copy and backed.X[:3].shape == (3, 40)
    backed.file.close()


def test_keys_that_hdf5_would_nest_are_refused_before_writing(tmp_path, capsys):
    path = _h5ad(tmp_path)
    before = path.read_bytes()
    adata = ad.read_h5ad(path)
    adata.uns["a/b"] = 1
    with pytest.raises(ValueError, match="'/'"):
        gv.io.write_h5ad(adata, path)
    assert main(["coexpression", str(path), "--target", "pearson", "--key-added", "a/b", "--no-progress"]) == 2
    assert "'/'" in capsys.readouterr().err
    assert path.read_bytes() == before and temporaries(tmp_path) == []


def test_tables_are_compressed_as_their_suffix_says(tmp_path):
    adata = trained()
    path = gv.io.write_coexpression(adata, tmp_path / "m.tsv.gz", "gv_pearson")
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    back = pd.read_csv(path, sep="\t", index_col=0)
    np.testing.assert_allclose(back.to_numpy(), adata.varp["gv_pearson"], atol=1e-5)


def test_read_only_targets_long_names_and_ensembl_ids_with_a_newline(tmp_path):
    target = tmp_path / "locked.tsv"
    target.write_text("keep")
    os.chmod(target, 0o444)
    with pytest.raises(ValueError, match="read-only"):
        gv.io.write_coexpression(trained(), target, "gv_pearson")
    assert target.read_text() == "keep"
    long_name = tmp_path / ("x" * 240 + ".tsv")
    gv.io.write_coexpression(trained(), long_name, "gv_pearson")
    assert long_name.exists() and temporaries(tmp_path) == []
    text = gv.io.to_markdown(pd.DataFrame({"gene": ["ENSG00000141510\n"], "similarity": [0.5]}))
    assert text.count("\n") == 3 and "proteinatlas" not in text
