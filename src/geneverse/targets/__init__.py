"""Co-expression targets: the registry behind ``gv.tl.coexpression(target=...)``.

Built-in: ``mi`` (default), ``pearson``, ``spearman``, ``jaccard``, ``cosine``, ``cooccurrence``,
``ppmi``. Add your own with :func:`register_target`.
"""

from __future__ import annotations

from . import _builtin  # noqa: F401  (registers the built-in targets)
from ._registry import Target, available_targets, get_target, register_target, unregister_target

__all__ = ["Target", "available_targets", "get_target", "register_target", "unregister_target"]
