"""Every tutorial's code blocks run, in order, in a fresh namespace (so the tutorials never rot)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

TUTORIALS = sorted((Path(__file__).parents[1] / "tutorials").glob("*.md"))


def code_blocks(path: Path) -> list[str]:
    # MyST-NB code cells (executed by the docs build too) and plain python blocks
    return re.findall(r"```(?:python|\{code-cell\}[^\n]*)\n(.*?)```", path.read_text(), flags=re.DOTALL)


def test_tutorials_exist():
    assert TUTORIALS, "no tutorials found"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs(path, tmp_path, monkeypatch):
    import geneverse as gv

    if "gv.viewer.view" in path.read_text() and not os.environ.get("DISPLAY"):
        pytest.skip("the napari part needs an X server: install Xvfb (make system-deps) for pytest-xvfb")
    monkeypatch.chdir(tmp_path)  # files a tutorial writes land in a temporary folder
    blocks = code_blocks(path)
    assert blocks, f"{path.name} has no python blocks"
    namespace: dict = {}
    registered = set(gv.targets.available_targets())
    try:
        for block in blocks:
            exec(compile(block, str(path), "exec"), namespace)
    finally:
        for name in set(gv.targets.available_targets()) - registered:  # targets the tutorial added
            gv.targets.unregister_target(name)
        plt.close("all")
