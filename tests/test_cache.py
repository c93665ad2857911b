"""The on-disk cache: hits, keys, clearing, corruption and unwritable directories."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData

import geneverse as gv


def test_second_call_is_served_from_cache(adata):
    gv.tl.coexpression(adata, progress=False)
    first = adata.varp["gv_mi"].copy()
    assert adata.uns["gv"]["gv_mi"]["from_cache"] is False
    assert len(gv.cache.entries()) == 1
    gv.tl.coexpression(adata, progress=False)
    assert adata.uns["gv"]["gv_mi"]["from_cache"] is True
    np.testing.assert_array_equal(adata.varp["gv_mi"], first)


def test_key_ignores_storage_format_but_not_values_or_parameters(adata):
    gv.tl.coexpression(adata, progress=False)
    dense = AnnData(X=adata.X.toarray().astype(np.int32), var=adata.var.copy())
    gv.tl.coexpression(dense, chunk_size=17, progress=False)
    assert dense.uns["gv"]["gv_mi"]["cache_key"] == adata.uns["gv"]["gv_mi"]["cache_key"]
    assert dense.uns["gv"]["gv_mi"]["from_cache"] is True
    gv.tl.coexpression(adata, target_kwargs={"n_bins": 5}, key_added="mi5", progress=False)
    gv.tl.coexpression(adata, signed_mi=False, key_added="unsigned", progress=False)
    changed = adata.X.toarray()
    changed[0, 0] += 1
    other = AnnData(X=changed, var=adata.var.copy())
    gv.tl.coexpression(other, progress=False)
    runs = [(adata, "gv_mi"), (adata, "mi5"), (adata, "unsigned"), (other, "gv_mi")]
    keys = {a.uns["gv"][k]["cache_key"] for a, k in runs}
    assert len(keys) == 4


def test_use_cache_false_and_clear(adata):
    gv.tl.coexpression(adata, "pearson", use_cache=False, progress=False)
    assert gv.cache.entries() == [] and adata.uns["gv"]["gv_pearson"]["cache_key"] == ""
    gv.tl.coexpression(adata, "pearson", progress=False)
    gv.tl.coexpression(adata, "cosine", progress=False)
    assert len(gv.cache.entries()) == 2
    assert gv.cache.clear() == 2 and gv.cache.entries() == []


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_matrix"])
def test_corrupt_entry_is_recomputed(adata, damage):
    gv.tl.coexpression(adata, progress=False)
    expected = adata.varp["gv_mi"].copy()
    (path,) = gv.cache.entries()
    if damage == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not an npz file")
    else:
        with np.load(path) as archive:
            checksum, metadata = archive["checksum"], archive["metadata"]
        np.savez(path.with_suffix(""), matrix=np.zeros_like(expected), checksum=checksum, metadata=metadata)
        os.replace(str(path.with_suffix("")) + ".npz", path)
    with pytest.warns(UserWarning, match="corrupt"):
        gv.tl.coexpression(adata, progress=False)
    assert adata.uns["gv"]["gv_mi"]["from_cache"] is False
    np.testing.assert_array_equal(adata.varp["gv_mi"], expected)
    gv.tl.coexpression(adata, progress=False)  # rewritten entry is valid again
    assert adata.uns["gv"]["gv_mi"]["from_cache"] is True


def test_unwritable_cache_degrades_with_a_warning(adata, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("GENEVERSE_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="without caching"):
        gv.tl.coexpression(adata, "pearson", progress=False)
    np.testing.assert_allclose(adata.varp["gv_pearson"], np.corrcoef(adata.X.toarray().T), atol=1e-6)


def test_custom_target_key_follows_its_code(adata):
    def first(X, gene_names):
        return np.ones((X.shape[1],) * 2)

    def second(X, gene_names):
        return np.zeros((X.shape[1],) * 2)

    gv.tl.coexpression(adata, first, key_added="k", progress=False)
    key_first = adata.uns["gv"]["k"]["cache_key"]
    gv.tl.coexpression(adata, second, key_added="k", progress=False)
    assert adata.uns["gv"]["k"]["cache_key"] != key_first
    assert not sp.issparse(adata.varp["k"]) and not adata.varp["k"].any()


# ---------------------------------------------------------------- keys, foreign entries, orphans


@pytest.mark.parametrize("key", ["../x", "../victim", "/etc/passwd", "a" * 5000, "ABCDEF0123456789", "", 7])
def test_keys_cannot_name_a_path(key, tmp_path, isolated_cache):
    victim = isolated_cache.parent / "victim.gvcache.npz"
    victim.write_bytes(b"someone else's file")
    with pytest.raises(ValueError, match="Invalid cache key"):
        gv.cache.store(key, np.eye(2))
    with pytest.raises(ValueError, match="Invalid cache key"):
        gv.cache.load(key, (2, 2))
    assert victim.read_bytes() == b"someone else's file"
    assert not (isolated_cache.parent / "x.gvcache.npz").exists()


def test_an_entry_is_served_only_for_its_own_key_shape_dtype_and_genes(isolated_cache):
    key_a, key_b = "a" * 40, "b" * 40
    matrix = np.arange(4.0).reshape(2, 2).astype(np.float32)
    gv.cache.store(key_a, matrix, genes=["g0", "g1"])
    np.testing.assert_array_equal(gv.cache.load(key_a, (2, 2), dtype=np.float32, genes=["g0", "g1"]), matrix)
    # another key's entry copied over: a valid file, a matching checksum, the wrong key
    gv.cache.store(key_b, matrix + 1, genes=["g0", "g1"])
    os.replace(gv.cache._path(key_a), gv.cache._path(key_b))
    with pytest.warns(UserWarning, match="another key"):
        assert gv.cache.load(key_b, (2, 2)) is None
    assert not gv.cache._path(key_b).exists()  # removed, to be recomputed
    gv.cache.store(key_a, matrix, genes=["g0", "g1"])
    for kwargs, reason in [({"genes": ["g1", "g0"]}, "other genes"), ({"dtype": np.float64}, "dtype")]:
        with pytest.warns(UserWarning, match=reason):
            assert gv.cache.load(key_a, (2, 2), **kwargs) is None
        gv.cache.store(key_a, matrix, genes=["g0", "g1"])


def test_a_foreign_npz_with_a_matching_checksum_is_not_served(isolated_cache):
    key = "c" * 40
    matrix = np.ones((3, 3))
    isolated_cache.mkdir(parents=True, exist_ok=True)
    # a file in the format of the previous release: matrix + checksum, no key
    with open(gv.cache._path(key), "wb") as handle:
        np.savez(handle, matrix=matrix, checksum=np.array(gv.cache._checksum(matrix)), metadata=np.array("{}"))
    with pytest.warns(UserWarning, match="corrupt"):
        assert gv.cache.load(key, (3, 3)) is None


def test_a_truncated_entry_leaks_no_open_file(isolated_cache):
    key = "d" * 40
    gv.cache.store(key, np.ones((50, 50)))
    path = gv.cache._path(key)
    path.write_bytes(path.read_bytes()[:300])
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        path.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
        with pytest.warns(UserWarning, match="corrupt"):
            assert gv.cache.load(key, (50, 50)) is None
    assert len(os.listdir("/proc/self/fd")) == before


def test_info_and_clear_see_orphaned_temporary_files(isolated_cache, capsys):
    from geneverse import _files
    from geneverse.cli import main

    gv.cache.store("e" * 40, np.ones((2, 2)))
    old = isolated_cache / f".{'f' * 40}.gvcache.npz.abc123{_files.TEMP_MARK}.npz"
    young = isolated_cache / f".{'f' * 40}.gvcache.npz.def456{_files.TEMP_MARK}.npz"
    for path in (old, young):
        path.write_bytes(b"half an entry")
    os.utime(old, (time.time() - 2 * _files.ORPHAN_AGE,) * 2)
    state = gv.cache.info()
    assert state["entries"] == 1 and state["orphans"] == 1 and state["bytes"] > 0
    assert main(["cache", "info"]) == 0
    assert "1 entries" in capsys.readouterr().out
    assert gv.cache.clear() == 2  # the entry and the orphan
    assert not old.exists() and young.exists()  # a young one may belong to a running writer


# ---------------------------------------------------------------- custom targets: what the key covers

SCALE = 1.0


def _helper(X):
    return np.full((X.shape[1],) * 2, SCALE)


def _uses_a_helper(X, gene_names):
    return _helper(X)


def test_custom_target_key_covers_closures_globals_and_helpers(adata, monkeypatch):
    def make(w):
        def weighted(X, gene_names):
            return w * np.ones((X.shape[1],) * 2)

        return weighted

    for w in (1.0, 2.0, 1.0):
        gv.tl.coexpression(adata, make(w), key_added="closure", progress=False)
        assert adata.varp["closure"][0, 0] == w
    assert adata.uns["gv"]["closure"]["from_cache"] is True  # w=1 again: a legitimate hit

    for scale in (1.0, 3.0):
        monkeypatch.setattr(sys.modules[__name__], "SCALE", scale)
        gv.tl.coexpression(adata, _uses_a_helper, key_added="helper", progress=False)
        assert adata.varp["helper"][0, 0] == scale  # a global edited between calls


def test_custom_target_reading_an_unhashable_object_is_not_cached(adata):
    class Model:
        factor = 5.0

    model = Model()

    def with_model(X, gene_names):
        return model.factor * np.ones((X.shape[1],) * 2)

    gv.tl.coexpression(adata, with_model, key_added="m", progress=False)
    assert adata.uns["gv"]["m"]["cache_key"] == "" and gv.cache.entries() == []
    model.factor = 6.0
    gv.tl.coexpression(adata, with_model, key_added="m", progress=False)
    assert adata.varp["m"][0, 0] == 6.0


def test_custom_target_keys_follow_array_parameters_and_ignore_attribute_names(adata):
    weights = np.zeros(3000)
    other = weights.copy()
    other[1500] = 1.0  # str() of both arrays is the same
    assert str(weights) == str(other)

    def weighted(X, gene_names, w):
        return np.full((X.shape[1],) * 2, w.sum())

    for w in (weights, other):
        gv.tl.coexpression(adata, weighted, key_added="w", target_kwargs={"w": w}, progress=False)
        assert adata.varp["w"][0, 0] == w.sum()
    assert gv.targets.get_target(_transposed).source_hash() == _hash_with_global_T(2)


def _transposed(X, gene_names):
    return (X.toarray().T @ X.toarray()) * 0  # reads the attribute .T, not a global T


def _hash_with_global_T(value):
    globals()["T"] = value
    try:
        return gv.targets.get_target(_transposed).source_hash()
    finally:
        del globals()["T"]


def test_custom_target_through_a_module_of_the_users_project_is_not_cached(adata, tmp_path, monkeypatch):
    (tmp_path / "mylib.py").write_text("FACTOR = 1.0\n\ndef score(n):\n    return FACTOR\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import mylib

    def through_module(X, gene_names):
        return np.full((X.shape[1],) * 2, mylib.score(1))

    assert gv.targets.get_target(through_module).source_hash() is None
    gv.tl.coexpression(adata, through_module, key_added="lib", progress=False)
    mylib.FACTOR = 2.0
    gv.tl.coexpression(adata, through_module, key_added="lib", progress=False)
    assert adata.varp["lib"][0, 0] == 2.0
    sys.modules.pop("mylib")


def test_fingerprint_of_self_referencing_values_does_not_crash():
    loop = [1.0]
    loop.append(loop)
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    assert gv.targets._registry.fingerprint({"loop": loop}) is not None
    assert gv.targets._registry.fingerprint({"deep": deep}) is None  # too deep to hash: not cached
