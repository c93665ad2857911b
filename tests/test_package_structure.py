"""Conventions as tests: the public API, signatures and docstrings."""

from __future__ import annotations

import inspect

import pytest

import geneverse as gv

PUBLIC_MODULES = ["tl", "pl", "io", "datasets", "targets", "cache", "graphs", "regions", "viewer", "bench"]


def public_functions():
    for module_name in PUBLIC_MODULES:
        module = getattr(gv, module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield f"{module_name}.{name}", obj


def test_public_modules():
    for name in PUBLIC_MODULES:
        assert hasattr(gv, name), name
    assert gv.__version__


@pytest.mark.parametrize(("name", "func"), list(public_functions()))
def test_numpy_docstrings(name, func):
    doc = inspect.getdoc(func)
    assert doc, name
    if inspect.signature(func).parameters:
        assert "Parameters\n----------" in doc, name
    documented = doc.split("Parameters\n----------")[-1]
    for parameter in inspect.signature(func).parameters:
        if parameter not in ("args", "kwargs"):
            assert parameter in documented, f"{name}: parameter {parameter!r} undocumented"


@pytest.mark.parametrize("func", [getattr(gv.tl, n) for n in gv.tl.__all__])
def test_tl_signature_conventions(func):
    parameters = list(inspect.signature(func).parameters.values())
    assert parameters[0].name == "adata"
    assert all(p.annotation is not inspect.Parameter.empty for p in parameters)
    by_name = {p.name: p for p in parameters}
    if "copy" not in by_name:  # queries return tables and write nothing
        assert "key_added" not in by_name
        return
    # scanpy's rule for functions that write: at most 3 positional parameters, options keyword-only
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(positional) <= 3
    for keyword in ("copy", "key_added", "layer", "mod"):
        if keyword in by_name:
            assert by_name[keyword].kind is inspect.Parameter.KEYWORD_ONLY, keyword
    assert by_name["copy"].default is False
