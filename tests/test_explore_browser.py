"""geneverse explore in a real headless Chromium (Debian's, driven by Playwright): typing, hover, click, zoom,
analogies, pairs, the embedding picker and the exports.

Skipped when Playwright or Chromium is missing (``make test`` installs both).
"""

from __future__ import annotations

import os
import shutil

import pytest

import geneverse as gv

from .test_explore import explorer_data

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("GENEVERSE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt install chromium)")
# as root, no sandbox; nothing in the background that would call out of a closed network
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def server():
    adata = explorer_data()
    running = gv.viewer.explore(adata, title="planted")
    running.explorer.map(wait=300)  # the layout, computed in the background at start-up
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server):
    # bypass_csp: Playwright's waits evaluate strings, which the page's policy (no eval) forbids
    context = browser.new_context(viewport={"width": 1300, "height": 800}, accept_downloads=True, bypass_csp=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url)
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("body[data-map-ready=true]")
    yield page
    context.close()
    assert not errors, errors


def rows(page, table: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"#{table} tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    )


def test_type_a_gene_and_see_its_neighbours(page):
    page.locator("#search").press_sequentially("ki", delay=30)
    page.wait_for_selector("#suggestions li[data-gene=king]")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('gene-name').textContent === 'king'")
    assert rows(page, "neighbours")[0][0] == "prince"
    assert page.text_content("#gene-description") == "about king"
    assert page.get_attribute("#gene-link", "href") == "https://www.proteinatlas.org/ENSG00000000000"
    # an alias completes to its gene; an unknown gene names close matches
    page.fill("#search", "")
    page.locator("#search").press_sequentially("monar", delay=30)
    page.wait_for_selector("#suggestions li[data-gene=king] .field")
    assert page.text_content("#suggestions li .field") == "alias: monarch"
    page.fill("#search", "kinq")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('status').textContent.includes('Close matches: king')")


def test_hover_click_and_zoom_on_the_map(page):
    x, y = page.evaluate("geneverseExplorer.position('P2G03')")
    page.mouse.move(x, y)
    page.wait_for_selector("#tooltip:not([hidden])")
    assert page.text_content("#tooltip").startswith("P2G03 · program ")
    page.mouse.click(x, y)
    page.wait_for_function("document.getElementById('gene-name').textContent === 'P2G03'")
    neighbours = [row[0] for row in rows(page, "neighbours")]
    assert len(neighbours) == 10 and all(g.startswith("P2G") for g in neighbours)
    # the program's central genes are listed and clickable
    assert page.locator("#program-genes button").count() > 0

    # the wheel zooms around the pointer: the gene under it stays, the others move away from it
    scale = page.evaluate("geneverseExplorer.state.view.scale")
    other = neighbours[-1]
    before = page.evaluate(f"geneverseExplorer.position('{other}')")
    x, y = round(x), round(y)  # the pointer is on whole pixels
    page.mouse.move(x, y)
    page.mouse.wheel(0, -600)
    page.wait_for_function(f"geneverseExplorer.state.view.scale > {scale} * 1.5")
    factor = page.evaluate("geneverseExplorer.state.view.scale") / scale
    anchor = page.evaluate("geneverseExplorer.position('P2G03')")
    assert anchor == pytest.approx([x, y], abs=factor)  # it was within half a pixel of the pointer
    zoomed = page.evaluate(f"geneverseExplorer.position('{other}')")
    assert zoomed == pytest.approx([x + factor * (before[0] - x), y + factor * (before[1] - y)], abs=1.0)
    page.mouse.move(*zoomed)
    page.wait_for_function(f"document.getElementById('tooltip').textContent.startsWith('{other} ')")
    # drag pans (towards the map's middle, so the pointer stays on it); double-click fits the map again
    box = page.locator("#map").bounding_box()
    dx = 80 if zoomed[0] < box["x"] + box["width"] / 2 else -80
    dy = 40 if zoomed[1] < box["y"] + box["height"] / 2 else -40
    page.mouse.move(zoomed[0], zoomed[1])
    page.mouse.down()
    page.mouse.move(zoomed[0] + dx, zoomed[1] + dy, steps=5)
    page.mouse.up()
    moved = page.evaluate(f"geneverseExplorer.position('{other}')")
    assert moved[0] == pytest.approx(zoomed[0] + dx, abs=2) and moved[1] == pytest.approx(zoomed[1] + dy, abs=2)
    page.mouse.dblclick(moved[0], moved[1])
    page.wait_for_function(f"Math.abs(geneverseExplorer.state.view.scale - {scale}) < 1e-6")


def test_analogy_pairs_and_markdown_export(page, server):
    for field, gene in zip("abc", ["king", "man", "woman"], strict=True):
        page.fill(f"#analogy-{field}", gene)
    page.click("#analogy-form button")
    page.wait_for_selector("#analogy-results tbody tr")
    assert rows(page, "analogy-results")[0][0] == "queen"
    page.fill("#pairs-a", "king")
    page.fill("#pairs-b", "queen")
    page.click("#pairs-form button")
    page.wait_for_selector("#pairs-results tbody tr")
    assert rows(page, "pairs-results")[0][:2] == ["man", "woman"]
    page.fill("#search", "queen")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('gene-name').textContent === 'queen'")

    with page.expect_download() as download:
        page.click("#export-md")
    text = open(download.value.path(), encoding="utf-8").read()
    explorer = server.explorer
    expected = [
        explorer.markdown(explorer.similar("queen", 10), "similar to queen"),
        explorer.markdown(explorer.analogy("king", "man", "woman", 10), "analogy king - man + woman"),
        explorer.markdown(explorer.pairs("king", "queen", 10), "pairs like king - queen"),
    ]
    assert text == "# geneverse explore: planted (X\\_gv)\n\n" + "\n".join(expected)  # escaped as to_markdown does
    assert download.value.suggested_filename == "geneverse-queen-X_gv.md"

    with page.expect_download() as png:
        page.click("#export-png")
    assert open(png.value.path(), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with page.expect_download() as svg:
        page.click("#export-svg")
    drawing = open(svg.value.path(), encoding="utf-8").read()
    assert drawing.startswith("<svg") and drawing.count("<circle") >= 53 and ">queen</text>" in drawing


def test_embedding_picker_and_shareable_address(page, server):
    page.fill("#search", "king")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('gene-name').textContent === 'king'")
    page.select_option("#key", "X_emb")
    expected = server.explorer.similar("king", 10, "X_emb").gene.tolist()
    page.wait_for_function(
        f"[...document.querySelectorAll('#neighbours tbody tr')].map(r => r.cells[0].textContent).join() === "
        f"{','.join(expected)!r}"
    )
    page.wait_for_function("geneverseExplorer.state.map && geneverseExplorer.state.map.genes.length === 53")
    assert "key=X_emb" in page.url and "gene=king" in page.url
    # the address restores the view
    page.goto(server.url + "#gene=queen&analogy=king,man,woman")
    page.wait_for_function("document.getElementById('gene-name').textContent === 'queen'")
    page.wait_for_selector("#analogy-results tbody tr")
    assert rows(page, "analogy-results")[0][0] == "queen"


def test_analogy_objective_is_picked_and_kept_in_the_address(page, server):
    for field, gene in zip("abc", ["king", "man", "woman"], strict=True):
        page.fill(f"#analogy-{field}", gene)
    page.select_option("#analogy-method", "3cosmul")
    page.click("#analogy-form button")
    expected = server.explorer.analogy("king", "man", "woman", 10, method="3cosmul").gene.tolist()
    page.wait_for_function(
        f"[...document.querySelectorAll('#analogy-results tbody tr')].map(r => r.cells[0].textContent).join() === "
        f"{','.join(expected)!r}"
    )
    assert "method=3cosmul" in page.url
