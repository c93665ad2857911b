"""Synthetic region sets with label-specific regions over the hg38 chromosomes (bioframe's bundled sizes)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._utils import check_seed, old_positionals


@old_positionals("regions_per_set", "universe_size", "label_regions", "signal", "seed")
def region_sets(
    n_labels: int = 4,
    sets_per_label: int = 20,
    *,
    regions_per_set: int = 200,
    universe_size: int = 5000,
    label_regions: int = 300,
    signal: float = 0.5,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], pd.DataFrame]:
    """A universe, labelled region sets and their metadata, with known truth.

    The universe is ``universe_size`` 500-bp regions placed at random on hg38's primary chromosomes
    (sizes from bioframe's bundled assembly information, no download). Each label owns
    ``label_regions`` of them. A set of a label draws a fraction ``signal`` of its regions from its
    label's own regions and the rest from the whole universe (shared noise); each drawn region is
    returned as a random sub-interval of the universe region, so overlaps are partial, as in real
    peak calls.

    Parameters
    ----------
    n_labels, sets_per_label
        Labels and sets per label.
    regions_per_set
        Regions per set.
    universe_size
        Universe regions.
    label_regions
        Characteristic universe regions per label.
    signal
        Fraction of a set's regions drawn from its label's characteristic regions.
    seed
        Random seed.

    Returns
    -------
    ``(universe, sets, metadata)``: the universe (``chrom``, ``start``, ``end``), a dict of set name ->
    regions, and a DataFrame indexed by set name with ``cell_type`` (the label).
    """
    import bioframe

    seed = check_seed(seed)
    if not 0 <= signal <= 1:
        raise ValueError(f"signal must be within [0, 1], got {signal}.")
    if n_labels * label_regions > universe_size:
        raise ValueError("n_labels x label_regions exceeds universe_size.")
    rng = np.random.default_rng(seed)
    sizes = bioframe.fetch_chromsizes("hg38", provider="local")
    sizes = sizes[[c for c in sizes.index if c.removeprefix("chr").isdigit() or c in ("chrX", "chrY")]]
    chroms = rng.choice(sizes.index.to_numpy(), size=universe_size, p=(sizes / sizes.sum()).to_numpy())
    starts = (rng.random(universe_size) * (sizes[chroms].to_numpy() - 1000)).astype(np.int64)
    universe = pd.DataFrame({"chrom": chroms, "start": starts, "end": starts + 500})
    universe = universe.sort_values(["chrom", "start"]).drop_duplicates(["chrom", "start"]).reset_index(drop=True)
    owned = rng.permutation(len(universe))[: n_labels * label_regions].reshape(n_labels, label_regions)
    sets, labels = {}, {}
    for label in range(n_labels):
        for k in range(sets_per_label):
            n_signal = round(signal * regions_per_set)
            picks = np.concatenate(
                [rng.choice(owned[label], n_signal), rng.choice(len(universe), regions_per_set - n_signal)]
            )
            base = universe.iloc[picks]
            offset = rng.integers(0, 400, size=len(picks))
            length = rng.integers(50, 500 - offset + 1)
            name = f"type{label}_set{k:03d}"
            sets[name] = pd.DataFrame(
                {"chrom": base["chrom"].to_numpy(), "start": base["start"].to_numpy() + offset,
                 "end": base["start"].to_numpy() + offset + length}
            )  # fmt: skip
            labels[name] = f"type{label}"
    metadata = pd.DataFrame({"cell_type": pd.Series(labels)})
    metadata.index.name = "set"
    return universe, sets, metadata
