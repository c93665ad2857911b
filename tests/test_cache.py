"""The on-disk cache: hits, keys, clearing, corruption and unwritable directories."""

from __future__ import annotations

import os

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
