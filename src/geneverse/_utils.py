"""Helpers shared by the public functions: containers, inputs, progress bars and ``uns`` values."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from ._keys import Key

logger = logging.getLogger("geneverse")

#: Name of the ``uns`` entry that holds every geneverse result's parameters.
UNS_KEY = Key.UNS

#: ``var`` columns used for a ``description`` column of query results, in order of preference.
DESCRIPTION_COLUMNS = ("description", "gene_description", "full_name")


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int if it is a positive integer (not a bool), else a ValueError naming ``name``."""
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def renamed_parameters(**old_to_new: str) -> Callable[[Callable], Callable]:
    """Keep callers that use an old parameter name working for one release, with a FutureWarning.

    ``@renamed_parameters(key="vectors_key")``: ``f(key=...)`` is passed on as ``f(vectors_key=...)``.
    """

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(
                            f"{func.__name__}() got both {old}= (its old name) and {new}=; pass {new}= only."
                        )
                    warnings.warn(
                        f"{func.__name__}({old}=...) is now {func.__name__}({new}=...); the old name goes away in the "
                        "next release.",
                        FutureWarning,
                        stacklevel=2,
                    )
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper

    return decorator


def old_positionals(*names: str) -> Callable[[Callable], Callable]:
    """Keep callers that pass now keyword-only parameters by position working, with a FutureWarning.

    As scanpy's ``old_positionals``: ``names`` are the parameters, in their old order, that follow
    the function's positional ones.
    """

    def decorator(func: Callable) -> Callable:
        parameters = inspect.signature(func).parameters.values()
        n_positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > n_positional:
                extra = args[n_positional:]
                if len(extra) > len(names):
                    most = n_positional + len(names)
                    raise TypeError(f"{func.__name__}() takes at most {most} positional arguments.")
                moved = dict(zip(names, extra, strict=False))
                clash = sorted(set(moved) & set(kwargs))
                if clash:
                    raise TypeError(f"{func.__name__}() got multiple values for {clash}.")
                warnings.warn(
                    f"Passing {list(moved)} to {func.__name__}() by position is deprecated; pass them by name "
                    f"({', '.join(f'{name}=...' for name in moved)}).",
                    FutureWarning,
                    stacklevel=2,
                )
                args, kwargs = args[:n_positional], {**kwargs, **moved}
            return func(*args, **kwargs)

        return wrapper

    return decorator


def check_seed(value: Any, name: str = "seed") -> int:
    """``value`` as an int if it is a non-negative integer (not a bool, float or string); else TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"{name} must be a non-negative integer, got {value!r} ({type(value).__name__}); e.g. {name}=0."
        )
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}; e.g. {name}=0.")
    return int(value)


def check_finite_number(name: str, value: Any, *, positive: bool = False, nonnegative: bool = False) -> float:
    """``value`` as a float if it is a finite real number (optionally > 0 or >= 0), else a TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}; pass a finite number.")
    if positive and number <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}.")
    if nonnegative and number < 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}.")
    return number


def is_mudata(data: object) -> bool:
    """Whether ``data`` is a MuData (checked without importing mudata)."""
    return hasattr(data, "mod") and not isinstance(data, AnnData)


def resolve_modality(data: Any, mod: str | None) -> AnnData:
    """The AnnData to work on: ``data`` itself, or ``data[mod]`` for a MuData.

    Raises
    ------
    KeyError
        ``mod`` is not a modality of the MuData.
    ValueError
        A MuData was given without ``mod``, or ``mod`` was given with an AnnData.
    TypeError
        ``data`` is neither.
    """
    if is_mudata(data):
        modalities = list(data.mod.keys())
        if mod is None:
            raise ValueError(f"Got a MuData: name the modality to use with `mod=`, one of {modalities}.")
        if mod not in data.mod:
            raise KeyError(f"Modality {mod!r} not in the MuData; available: {modalities}.")
        return data.mod[mod]
    if not isinstance(data, AnnData):
        raise TypeError(f"Expected an AnnData or MuData, got {type(data).__name__}.")
    if mod is not None:
        raise ValueError(f"`mod={mod!r}` only applies to a MuData; this is an AnnData.")
    return data


def copy_container(data: Any) -> Any:
    """Deep copy of an AnnData or MuData, with a clear error for backed objects."""
    if getattr(data, "isbacked", False):
        raise ValueError(
            "copy=True is not supported for a backed AnnData (its X lives on disk); "
            "use copy=False, or load it with `adata.to_memory()` first."
        )
    return data.copy()


def get_expression(adata: AnnData, layer: str | None) -> tuple[Any, str]:
    """The matrix for ``layer`` (``None`` = ``X``) and how to name it in messages."""
    if layer is None:
        if adata.X is None:
            raise ValueError("adata.X is empty (None); pass `layer=` naming a layer that holds expression.")
        return adata.X, "adata.X"
    if layer not in adata.layers:
        raise KeyError(f"Layer {layer!r} not found; available layers: {list(adata.layers.keys())}.")
    return adata.layers[layer], f"adata.layers[{layer!r}]"


def check_unique_var_names(adata: AnnData) -> None:
    """Gene-indexed results need unique gene names."""
    if not adata.var_names.is_unique:
        duplicated = adata.var_names[adata.var_names.duplicated()].unique()[:5].tolist()
        raise ValueError(f"var_names are not unique (e.g. {duplicated}); call `adata.var_names_make_unique()` first.")


def select_genes(adata: AnnData, genes: str | Sequence[str] | np.ndarray | None) -> np.ndarray | None:
    """Integer positions of the chosen genes, or ``None`` for all.

    ``genes`` is a list of names, a boolean mask over ``var``, or the name of a boolean ``var``
    column such as ``"highly_variable"``.
    """
    if genes is None:
        return None
    if isinstance(genes, str):
        if genes not in adata.var.columns:
            raise KeyError(
                f"genes={genes!r} is not a column of adata.var; pass a boolean var column "
                f"(e.g. 'highly_variable') or a list of gene names. Columns: {list(adata.var.columns)}."
            )
        column = adata.var[genes]
        if column.dtype != bool:
            raise ValueError(f"adata.var[{genes!r}] must be boolean to select genes, got dtype {column.dtype}.")
        positions = np.flatnonzero(column.to_numpy())
    else:
        array = np.asarray(genes)
        if array.dtype == bool:
            if array.shape != (adata.n_vars,):
                raise ValueError(f"A boolean gene mask needs length n_vars={adata.n_vars}, got {array.shape}.")
            positions = np.flatnonzero(array)
        else:
            names = [str(g) for g in array.ravel()]
            index = adata.var_names.get_indexer(names)
            missing = [n for n, i in zip(names, index, strict=True) if i < 0]
            if missing:
                raise KeyError(f"Genes not in var_names: {missing[:10]}{' ...' if len(missing) > 10 else ''}.")
            if len(set(names)) != len(names):
                raise ValueError("`genes` lists a gene more than once.")
            positions = np.sort(index)
    if len(positions) == 0:
        raise ValueError("The gene selection is empty; choose at least one gene.")
    return positions


def progress_bar(enabled: bool, desc: str):
    """A tqdm factory (``iterable, total=`` -> iterator), or ``None`` when disabled."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    def wrap(iterable: Iterable, total: int | None = None):
        return tqdm(iterable, total=total, desc=desc, leave=False)

    return wrap


def uns_safe(value: Any) -> Any:
    """Convert a parameter value to something h5ad can store (``None`` becomes ``"None"``)."""
    if value is None:
        return "None"
    if isinstance(value, dict):
        return {str(k): uns_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [uns_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bool | int | float | str | np.ndarray | pd.DataFrame):
        return value
    return str(value)


def write_uns(adata: AnnData, key: str, record: dict) -> None:
    """Store ``record`` under ``adata.uns['gv'][key]``."""
    store = adata.uns.get(UNS_KEY)
    if not isinstance(store, dict):
        store = {}
    store = dict(store)
    store[key] = uns_safe(record)
    adata.uns[UNS_KEY] = store


def _cuda_possible() -> bool:
    """Cheap check before importing torch (about 2 s) just to learn there is no GPU."""
    return "torch" in sys.modules or os.path.exists("/proc/driver/nvidia/version")


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; other values are checked."""
    if device == "auto" and not _cuda_possible():
        return "cpu"
    if not isinstance(device, str):
        raise TypeError(f"device must be a string ('auto', 'cpu' or 'cuda'), got {type(device).__name__}.")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"Unknown torch device {device!r}; use 'auto', 'cpu' or 'cuda'.") from error
    if parsed.type not in ("cpu", "cuda"):
        # mps, meta, xla ...: geneverse's kernels (sparse products, generators) are written for CPU and CUDA
        raise ValueError(f"device={device!r} is not supported; use 'auto', 'cpu' or 'cuda'.")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but torch sees no CUDA GPU; use device='auto' or 'cpu'.")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but torch sees {torch.cuda.device_count()} CUDA GPU(s); use 'cuda' or 'cuda:0'."
            )
    return device
