"""Content fingerprints of AnnData slots, to prove that a call changed only its documented outputs."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData


def digest(value: object) -> str:
    """A hash of an array, sparse matrix, DataFrame or (nested) uns value."""
    hasher = hashlib.blake2b(digest_size=16)
    if value is None:
        hasher.update(b"none")
    elif sp.issparse(value):
        matrix = sp.csr_matrix(value)
        for part in (matrix.data, matrix.indices, matrix.indptr, np.asarray(matrix.shape)):
            hasher.update(np.ascontiguousarray(part).tobytes())
        hasher.update(str(matrix.dtype).encode())
    elif isinstance(value, pd.DataFrame):
        hasher.update(pickle.dumps((list(value.columns), list(value.index), [str(t) for t in value.dtypes])))
        hasher.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            hasher.update(pickle.dumps(value.tolist()))
        else:
            hasher.update(np.ascontiguousarray(value).tobytes())
        hasher.update(f"{value.dtype}{value.shape}".encode())
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            hasher.update(str(key).encode())
            hasher.update(digest(value[key]).encode())
    else:
        hasher.update(pickle.dumps(value))
    return hasher.hexdigest()


def fingerprint(adata: AnnData) -> dict[str, str]:
    """One hash per slot entry: ``X``, each layer, ``obs``, ``var``, and each varp/varm/obsm/obsp/uns key."""
    prints = {"X": digest(adata.X), "obs_names": digest(np.asarray(adata.obs_names, dtype=object))}
    prints["var_names"] = digest(np.asarray(adata.var_names, dtype=object))
    for frame, name in ((adata.obs, "obs"), (adata.var, "var")):
        for column in frame.columns:
            prints[f"{name}:{column}"] = digest(frame[[column]])
    for slot in ("layers", "varp", "varm", "obsm", "obsp", "uns"):
        for key, value in getattr(adata, slot).items():
            if slot == "uns" and key == "gv" and isinstance(value, dict):
                for sub, record in value.items():  # one entry per geneverse result
                    prints[f"uns:gv:{sub}"] = digest(record)
            else:
                prints[f"{slot}:{key}"] = digest(value)
    return prints


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """Slot entries added, removed or modified."""
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
