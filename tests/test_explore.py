"""geneverse explore: the JSON API (known answers, the same tables as gv.tl), errors, what is served, the server.

The page itself is driven in a real browser in ``test_explore_browser.py``.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData
from werkzeug.test import Client

import geneverse as gv
from geneverse.cli import main
from geneverse.viewer._explorer import Explorer
from geneverse.viewer._server import ExplorerApp

from ._fingerprint import changed, fingerprint

ROYAL = {  # dims: royalty, gender (+ male), noise
    "king": [1.0, 1.0, 0.1],
    "queen": [1.0, -1.0, 0.1],
    "man": [0.0, 1.0, 0.0],
    "woman": [0.0, -1.0, 0.0],
    "prince": [0.9, 1.1, 0.3],
}


def explorer_data(seed: int = 0) -> AnnData:
    """Royal genes (analogies with known answers) and 4 planted clusters of 12 genes, with programs."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 8)) * 3
    cluster = np.repeat(np.arange(4), 12)
    planted = centres[cluster] + 0.2 * rng.normal(size=(48, 8))
    royal = np.zeros((len(ROYAL), 8))
    royal[:, :3] = np.array(list(ROYAL.values())) * 3
    names = list(ROYAL) + [f"P{c}G{i:02d}" for c, i in zip(cluster, np.tile(np.arange(12), 4), strict=True)]
    adata = AnnData(X=sp.csr_matrix((4, len(names)), dtype=np.float32))
    adata.var_names = names
    adata.varm["X_gv"] = np.vstack([royal, planted]).astype(np.float32)
    adata.varm["X_emb"] = rng.normal(size=(len(names), 5))  # a second embedding for the picker
    adata.var["description"] = [f"about {n}" for n in names]
    adata.var["gene_ids"] = [f"ENSG{i:011d}" for i in range(len(names))]
    adata.var["aliases"] = ["rex, monarch"] + [""] * (len(names) - 1)
    gv.tl.programs(adata, method="kmeans", n_clusters=5, seed=0)
    return adata


@pytest.fixture(scope="module")
def data() -> AnnData:
    return explorer_data()


@pytest.fixture(scope="module")
def client(data) -> Client:
    return Client(ExplorerApp(Explorer(data), title="test"))


def get(client: Client, path: str, status: int = 200, **params) -> dict:
    response = client.get(path, query_string=params)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return json.loads(response.get_data(as_text=True))


def test_completion_searches_names_ensembl_ids_and_aliases(client):
    names = get(client, "/api/genes", prefix="P1G0")["results"]
    assert [r["gene"] for r in names] == [f"P1G{i:02d}" for i in range(10)]  # at most n=10, sorted
    assert [r["gene"] for r in get(client, "/api/genes", prefix="qu")["results"]] == ["queen"]
    assert get(client, "/api/genes", prefix="KI")["results"][0]["gene"] == "king"  # any case
    ensembl = get(client, "/api/genes", prefix="ENSG00000000001")["results"]
    assert ensembl[0] == {"gene": "queen", "match": "ENSG00000000001", "field": "ensembl"}
    assert get(client, "/api/genes", prefix="mon")["results"] == [
        {"gene": "king", "match": "monarch", "field": "alias"}
    ]
    assert get(client, "/api/genes", prefix="zzz")["results"] == []
    assert len(get(client, "/api/genes", prefix="P", n=3)["results"]) == 3


def test_similar_analogy_and_pairs_answer_as_gv_tl(client, data):
    similar = get(client, "/api/similar", gene="P2G03", n=5)["results"]
    expected = gv.tl.similar(data, "P2G03", 5)
    assert [r["gene"] for r in similar] == expected.gene.tolist()
    np.testing.assert_allclose([r["similarity"] for r in similar], expected.similarity, atol=1e-6)
    assert {r["gene"][:2] for r in similar} == {"P2"}  # the planted cluster
    assert similar[0]["description"] == f"about {similar[0]['gene']}"
    row = list(data.var_names).index(similar[0]["gene"])
    assert similar[0]["link"] == f"https://www.proteinatlas.org/ENSG{row:011d}"
    assert similar[0]["program"] == str(data.var["gv_program"].iloc[row])

    analogy = get(client, "/api/analogy", a="king", b="man", c="woman", n=3)["results"]
    assert analogy[0]["gene"] == "queen"
    multiplied = get(client, "/api/analogy", a="king", b="man", c="woman", n=5, method="3cosmul")["results"]
    expected = gv.tl.analogy(data, "king", "man", "woman", n=5, method="3cosmul")
    assert [r["gene"] for r in multiplied] == expected.gene.tolist()
    np.testing.assert_allclose([r["score"] for r in multiplied], expected.score, atol=1e-6)

    pairs = get(client, "/api/pairs", a="king", b="queen", n=4)["results"]
    expected = gv.tl.similar_pairs(data, "king", "queen", n=4, progress=False)
    assert [(r["gene_x"], r["gene_y"]) for r in pairs] == list(zip(expected.gene_x, expected.gene_y, strict=True))
    assert (pairs[0]["gene_x"], pairs[0]["gene_y"]) == ("man", "woman")  # male - female, as king - queen

    # ids and aliases are accepted wherever a gene is
    assert (
        get(client, "/api/similar", gene="monarch", n=5)["results"]
        == get(client, "/api/similar", gene="king", n=5)["results"]
    )
    assert get(client, "/api/similar", gene="ENSG00000000000", n=2)["results"][0]["gene"] == "prince"


def test_another_embedding_is_picked_by_key(client, data):
    info = get(client, "/api/info")["results"][0]
    assert info["keys"] == ["X_gv", "X_emb"] and info["default_key"] == "X_gv" and info["genes"] == data.n_vars
    other = get(client, "/api/similar", gene="king", n=3, key="X_emb")["results"]
    assert [r["gene"] for r in other] == gv.tl.similar(data, "king", 3, vectors_key="X_emb").gene.tolist()


def test_gene_card_names_its_program_and_central_genes(client, data):
    card = get(client, "/api/gene", gene="p3g05")["results"][0]  # names resolve ignoring case
    assert card["gene"] == "P3G05" and card["description"] == "about P3G05"
    program = str(data.var.loc["P3G05", "gv_program"])
    assert card["program"] == program
    central = [str(g) for g in data.uns["gv"]["gv_program"]["programs"][program]][:10]
    assert card["program_genes"] == central and set(card["embeddings"]) == {"X_gv", "X_emb"}


def test_markdown_export_is_gv_io_to_markdown(client, data):
    response = client.get("/api/similar", query_string={"gene": "queen", "n": 3, "format": "markdown"})
    assert response.status_code == 200 and response.mimetype == "text/markdown"
    table = gv.tl.similar(data, "queen", 3)
    assert response.get_data(as_text=True) == "## similar to queen\n\n" + gv.io.to_markdown(table, data)
    pairs = client.get("/api/pairs", query_string={"a": "king", "b": "queen", "n": 2, "format": "markdown"})
    assert "| man | woman |" in pairs.get_data(as_text=True).replace("\\", "")


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/api/similar", {"gene": "kinq"}, 404, "Close matches: king"),
        ("/api/similar", {}, 400, "gene is missing"),
        ("/api/similar", {"gene": "king", "n": "ten"}, 400, "n must be a whole number"),
        ("/api/similar", {"gene": "king", "n": "0"}, 400, "n must be between 1 and 500"),
        ("/api/similar", {"gene": "king", "key": "X_nope"}, 400, "not a gene embedding"),
        ("/api/similar", {"gene": "king", "format": "xml"}, 400, "use json"),
        ("/api/analogy", {"a": "king", "b": "man"}, 400, "c is missing"),
        ("/api/analogy", {"a": "king", "b": "king", "c": "man"}, 400, "three different genes"),
        ("/api/analogy", {"a": "king", "b": "man", "c": "woman", "method": "3cosx"}, 400, "use one of"),
        ("/api/pairs", {"a": "king", "b": "monarch"}, 400, "two different genes"),
        ("/api/pairs", {"a": "queeen", "b": "man"}, 404, "queen"),
        ("/api/map", {"key": "X_nope"}, 400, "not a gene embedding"),
        ("/api/nothing", {}, 404, "the API is under /api/"),
    ],
)
def test_bad_requests_name_the_problem(client, path, params, status, message):
    body = get(client, path, status, **params)
    assert message in body["error"]
    if status == 404 and "matches" in body:
        assert body["matches"]


@pytest.mark.parametrize(
    "path",
    [
        "/../pyproject.toml",
        "/explorer/../_server.py",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/_server.py",
        "/explorer/index.html",
        "/api/../../README.md",
        "//etc/passwd",
    ],
)
def test_serves_nothing_but_its_api_and_assets(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "geneverse" not in response.get_data(as_text=True).lower() or "api" in response.get_data(as_text=True)


def test_assets_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere
    script = client.get("/explorer.js").get_data(as_text=True)
    assert "innerHTML" not in script and "fetch(`${path}" in script
    assert client.post("/api/similar", query_string={"gene": "king"}).status_code == 405


def test_map_is_read_when_gene_map_stored_it_and_computed_once_otherwise(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    adata = explorer_data()
    fresh = Explorer(adata)
    computed = fresh.map(wait=120)
    assert computed["source"] == "computed" and len(computed["genes"]) == adata.n_vars
    assert fresh.map() is computed  # once
    assert "X_gv_umap" not in adata.varm  # the explorer never writes

    ax = gv.pl.gene_map(adata, show=False)
    stored = adata.varm["X_gv_umap"]
    assert np.isfinite(stored).all() and adata.uns["gv"]["X_gv_umap"]["params"]["vectors_key"] == "X_gv"
    adata.write_h5ad(tmp_path / "mapped.h5ad")
    read = Explorer(ad.read_h5ad(tmp_path / "mapped.h5ad")).map()
    assert read["source"] == "stored"
    np.testing.assert_allclose(np.c_[read["x"], read["y"]], stored, atol=1e-3)
    assert "X_gv_umap" not in Explorer(adata).keys  # a layout is not offered as an embedding
    # gene_map reuses its own layout for the same vectors, and recomputes when they change
    ax.figure.clf()
    gv.pl.gene_map(adata, show=False)
    np.testing.assert_array_equal(adata.varm["X_gv_umap"], stored)
    adata.varm["X_gv"] = adata.varm["X_gv"][:, ::-1].copy()
    assert Explorer(adata)._stored_map("X_gv") is None


def test_the_explorer_writes_nothing(tmp_path, data):
    before = fingerprint(data)
    app = Client(ExplorerApp(Explorer(data)))
    for path, params in [
        ("/api/similar", {"gene": "king"}),
        ("/api/analogy", {"a": "king", "b": "man", "c": "woman"}),
        ("/api/pairs", {"a": "king", "b": "man"}),
        ("/api/gene", {"gene": "king"}),
    ]:
        assert app.get(path, query_string=params).status_code == 200
    assert not changed(before, fingerprint(data))


def test_explore_serves_a_file_in_the_background_and_stops(tmp_path):
    path = tmp_path / "genes.h5ad"
    explorer_data().write_h5ad(path)
    written = path.read_bytes()
    server = gv.viewer.explore(path)
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.running
        with urllib.request.urlopen(server.url + "api/similar?gene=king&n=2", timeout=10) as response:
            assert json.load(response)["results"][0]["gene"] == "prince"
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(server.url + "api/similar?gene=kingg", timeout=10)
        assert error.value.code == 404 and "king" in json.load(error.value)["error"]
        assert server.url in server._repr_html_() and "genes.h5ad" in server.app.title
    finally:
        server.stop()
    assert not server.running
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url + "api/info", timeout=2)
    assert path.read_bytes() == written  # the file is never written


@pytest.mark.parametrize("port", [-1, 70000, 1.5, "80"])
def test_explore_rejects_bad_ports(data, port):
    with pytest.raises(ValueError, match="port must be an integer from 0 to 65535"):
        gv.viewer.explore(data, port=port)


def test_explore_needs_an_embedding():
    adata = AnnData(X=np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"No gene embedding in this file.*gv.tl.embed"):
        gv.viewer.explore(adata)
    with pytest.raises(ValueError, match="not a gene embedding"):
        gv.viewer.explore(explorer_data(), vectors_key="X_nope")


def test_cli_explore_errors(tmp_path, capsys):
    assert main(["explore", str(tmp_path / "missing.h5ad"), "--no-browser"]) == 2
    assert "no such file" in capsys.readouterr().err
    path = tmp_path / "genes.h5ad"
    explorer_data().write_h5ad(path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["explore", str(path), "--no-browser", "--port", str(port)]) == 2
    assert f"port {port} is in use" in capsys.readouterr().err


def test_names_table_handles_missing_aliases_and_duplicates():
    adata = explorer_data()
    adata.var["aliases"] = pd.Series([np.nan, "a|b", "b"] + [None] * (adata.n_vars - 3), index=adata.var_names)
    explorer = Explorer(adata)
    assert [r["gene"] for r in explorer.genes("b")] == ["queen", "man"]  # alias b: two genes, once each
    assert explorer.genes("nan") == []


def test_cli_explore_serves_until_interrupted(tmp_path):
    import signal
    import subprocess
    import sys

    path = tmp_path / "genes.h5ad"
    explorer_data().write_h5ad(path)
    command = [sys.executable, "-m", "geneverse.cli", "explore", str(path), "--port", "0", "--no-browser"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("geneverse explore: http://127.0.0.1:"), line + process.stderr.read()
        url = line.split()[2]
        with urllib.request.urlopen(url + "api/analogy?a=king&b=man&c=woman&n=1", timeout=30) as response:
            assert json.load(response)["results"][0]["gene"] == "queen"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        told = process.stderr.read()
        assert "stopped" in told and "computing the gene map (UMAP) in the background" in told
    finally:
        process.kill()


def test_explore_a_mudata_modality():
    mudata = pytest.importorskip("mudata")
    mdata = mudata.MuData({"rna": explorer_data()})
    server = gv.viewer.explore(mdata, mod="rna")
    try:
        assert server.explorer.similar("king", 1).gene.tolist() == ["prince"]
    finally:
        server.stop()


def test_only_this_machines_names_are_answered():
    # DNS rebinding: a page on another domain that resolves to 127.0.0.1 must not read the data
    from geneverse.viewer._server import LOOPBACK_NAMES

    app = Client(ExplorerApp(Explorer(explorer_data()), hosts=LOOPBACK_NAMES))
    for host in ("127.0.0.1:8765", "localhost:8765", "LOCALHOST", "[::1]:8765", "[::1]"):
        assert app.get("/api/info", headers={"Host": host}).status_code == 200
    response = app.get("/api/similar", query_string={"gene": "king"}, headers={"Host": "evil.example:8765"})
    assert response.status_code == 400 and "is not this server" in response.get_json()["error"]


def test_a_bug_is_a_500_not_a_bad_request(data, monkeypatch, caplog):
    explorer = Explorer(data)
    monkeypatch.setattr(explorer, "similar", lambda *a: 1 / 0)
    response = Client(ExplorerApp(explorer)).get("/api/similar", query_string={"gene": "king"})
    assert response.status_code == 500 and "ZeroDivisionError" in response.get_json()["error"]
    assert "ZeroDivisionError" in caplog.text  # with its traceback in the log


def test_duplicated_names_missing_values_and_genes_without_vectors(tmp_path):
    adata = explorer_data()
    adata.var["symbol"] = (
        ["king", "queen", "man", "woman", "queen"] + [f"S{i}" for i in range(adata.n_vars - 6)] + [np.nan]
    )
    adata.var["aliases"] = ["rex", None] + ["x"] * (adata.n_vars - 2)
    adata.varm["X_gv"][3] = 0.0  # woman has no vector
    adata.write_h5ad(tmp_path / "odd.h5ad")  # categoricals with missing values, as files hold them
    server = gv.viewer.explore(tmp_path / "odd.h5ad", gene_symbols="symbol")
    try:
        explorer = server.explorer
        assert explorer.adata.isbacked  # X stays on disk
        # 'queen' twice (rows 1 and 4): each answer row carries its own program and link
        table = explorer.similar("king", 60)
        rows = explorer.results(table)
        for row, position in zip(rows, table.attrs["rows"]["gene"], strict=True):
            assert row["program"] == str(adata.var["gv_program"].iloc[position])
            assert row["link"] == f"https://www.proteinatlas.org/ENSG{position:011d}"
        assert explorer.gene("woman")["embeddings"] == ["X_emb"]  # as the queries see it
        with pytest.raises(ValueError, match="Gene 'woman' has no usable vector"):
            explorer.similar("woman")
        with pytest.raises(KeyError, match="not in this file"):
            explorer.resolve("nan")  # a missing symbol is not a name
    finally:
        server.stop()
    assert not explorer.adata.file.is_open  # stop() closes the file it opened


def test_gene_map_leaves_a_view_alone():
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    adata = explorer_data()
    view = adata[:, :40]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # anndata's ImplicitModificationWarning would turn the view into a copy
        ax = gv.pl.gene_map(view, show=False, progress=False)
    assert view.is_view and "X_gv_umap" not in view.varm and "X_gv_umap" not in adata.varm
    ax.figure.clf()
