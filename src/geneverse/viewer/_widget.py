"""The napari dock widget: pick cells, then a program or a gene, and see its values on the tissue."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatRangeSlider,
    Label,
    LineEdit,
    PushButton,
    RadioButtons,
)

from .._data import write_result
from .._keys import Key
from .._utils import UNS_KEY
from ._data import (
    DEFAULT_SCORES_KEY,
    cell_type_choices,
    cell_type_values,
    contrast_limits,
    find_gene,
    gene_values,
    match_gene,
    program_values,
    score_programs_available,
    top_genes,
    unscored_programs_key,
)
from ._layers import ADATA_KEY, DEFAULT_COLORMAP, OVERLAY_FEATURE, layer_data

if TYPE_CHECKING:
    import napari
    from anndata import AnnData

COLORMAPS = ("viridis", "magma", "inferno", "plasma", "turbo", "gray", "red", "blue")
N_TOP_GENES = 10
#: Points feature holding the assigned cell types when the layer is coloured by type.
CELL_TYPE_FEATURE = "gv_cell_type"
UNASSIGNED_COLOUR = "#bdbdbd"


def _score_in_background(adata: AnnData, programs_key: str, scores_key: str) -> tuple[pd.DataFrame, dict]:
    """Program scores computed on a shallow AnnData that shares ``X``: the user's object is untouched here.

    Runs in a worker thread; the caller writes the result on the GUI thread.
    """
    from anndata import AnnData

    from ..tl import score_programs

    shallow = AnnData(
        X=adata.X,
        obs=pd.DataFrame(index=adata.obs_names.copy()),
        var=pd.DataFrame(index=adata.var_names.copy()),
        uns={UNS_KEY: {programs_key: adata.uns[UNS_KEY][programs_key]}},
    )
    score_programs(shallow, programs_key, key_added=scores_key, progress=False)
    return shallow.obsm[scores_key], shallow.uns[UNS_KEY][scores_key]


def viewer_grid(viewer: napari.viewer.Viewer) -> Any:
    """The viewer's grid settings (``viewer.canvas.grid`` since napari 0.9, ``viewer.grid`` before)."""
    canvas = getattr(viewer, "canvas", None)
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid


class ProgramWidget(Container):
    """Dock widget that colours a geneverse points layer by a gene program's scores or a gene's expression.

    Pick the cells (a points layer opened by the geneverse reader or :func:`geneverse.viewer.view`,
    or an ``.h5ad`` file), then a program of ``obsm['gv_programs']`` or any gene (type to search),
    a colormap and contrast limits: the layer recolours at once and the program's top genes are
    listed. "Keep as new layer" freezes the current view as another layer; "side by side" shows
    the layers in a grid. Files whose programs were never scored are scored in a worker thread.

    Parameters
    ----------
    napari_viewer
        The viewer to work in (napari passes it when the widget is opened from the Plugins menu).
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self._worker: Any = None
        self._source = ComboBox(label="cells", choices=self._geneverse_layers, nullable=True)
        self._open = FileEdit(label="open .h5ad", mode="r", filter="*.h5ad")
        self._kind = RadioButtons(
            label="show", choices=["program", "gene", "cell type"], value="program", orientation="horizontal"
        )
        # choices are callables: napari calls reset_choices() on docked magicgui widgets when layers change
        self._program = ComboBox(label="program", choices=self._program_choices)
        self._gene = LineEdit(label="gene")
        self._cell_type = ComboBox(label="cell type", choices=self._cell_type_choices)
        self._gene.native.setPlaceholderText("type a gene name, Enter to show")
        self._colormap = ComboBox(label="colormap", choices=list(COLORMAPS), value=DEFAULT_COLORMAP)
        self._auto_contrast = CheckBox(text="contrast from 1st-99th percentile", value=True)
        self._contrast = FloatRangeSlider(label="contrast", min=0.0, max=1.0, value=(0.0, 1.0), enabled=False)
        self._score = PushButton(text="Score programs", visible=False)
        self._keep = PushButton(text="Keep as new layer")
        self._side_by_side = CheckBox(text="side by side", value=False)
        self._top_genes = Label(label="top genes")
        self._message = Label(label="")
        for label in (self._top_genes, self._message):
            label.native.setWordWrap(True)
        self.extend(
            [
                self._source,
                self._open,
                self._kind,
                self._program,
                self._gene,
                self._cell_type,
                self._colormap,
                self._auto_contrast,
                self._contrast,
                self._score,
                self._keep,
                self._side_by_side,
                self._top_genes,
                self._message,
            ]
        )
        self._connect()
        self._layers_changed()
        if self.layer is None:
            self._source_changed()

    # ----------------------------------------------------------------- wiring
    def _connect(self) -> None:
        self.viewer.layers.events.inserted.connect(self._layers_changed)
        self.viewer.layers.events.removed.connect(self._layers_changed)
        self._source.changed.connect(self._source_changed)
        self._open.changed.connect(self._open_file)
        self._kind.changed.connect(self.show_current)
        self._program.changed.connect(self.show_current)
        self._cell_type.changed.connect(self._cell_type_chosen)
        self._gene.changed.connect(self._gene_typed)
        self._gene.native.returnPressed.connect(self.show_current)
        self._colormap.changed.connect(self.show_current)
        self._auto_contrast.changed.connect(self._auto_contrast_changed)
        self._contrast.changed.connect(self._contrast_moved)
        self._score.changed.connect(self.score_programs)
        self._keep.changed.connect(self.keep_as_layer)
        self._side_by_side.changed.connect(self._grid_changed)

    def _geneverse_layers(self, _widget: Any = None) -> list[tuple[str, Any]]:
        from napari.layers import Points

        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Points) and ADATA_KEY in layer.metadata
        ]

    def _program_choices(self, _widget: Any = None) -> list[str]:
        adata = self.adata
        return [] if adata is None else score_programs_available(adata, self._scores_key())

    def _cell_type_choices(self, _widget: Any = None) -> list[str]:
        adata = self.adata
        return [] if adata is None else cell_type_choices(adata)

    def _cell_type_chosen(self, _value: Any = None) -> None:
        if self._cell_type.value is not None:
            self._kind.value = "cell type"
            self.show_current()

    def _layers_changed(self, _event: Any = None) -> None:
        current = self._source.value
        self._source.reset_choices()
        choices = [c for c in self._source.choices if c is not None]
        if current is None and choices:
            self._source.value = choices[0]

    # ----------------------------------------------------------------- state
    @property
    def layer(self) -> Any:
        """The points layer being coloured (``None`` until one is loaded)."""
        return self._source.value

    @property
    def adata(self) -> AnnData | None:
        """The AnnData behind :attr:`layer`."""
        return None if self.layer is None else self.layer.metadata[ADATA_KEY]

    @property
    def message(self) -> str:
        """The last status or error message shown in the widget."""
        return str(self._message.value)

    def _say(self, text: str) -> None:
        self._message.value = text

    def _scores_key(self) -> str:
        return self.layer.metadata.get("scores_key", DEFAULT_SCORES_KEY)

    def _source_changed(self, _value: Any = None) -> None:
        adata = self.adata
        self._program.reset_choices()
        with self._cell_type.changed.blocked():
            self._cell_type.reset_choices()
        if adata is None:
            self._say("Open an .h5ad file with spatial coordinates, or a layer from the geneverse reader.")
            return
        programs = list(self._program.choices)
        self._set_gene_completer([str(g) for g in adata.var_names])
        scorable = not programs and unscored_programs_key(adata) is not None
        self._score.visible = scorable
        if programs:
            self._say("")
        elif scorable:
            self._say("Programs found but not scored: press 'Score programs' (runs in the background), or show a gene.")
        else:
            self._say(
                f"No program scores in obsm[{self._scores_key()!r}]: run gv.tl.programs and "
                "gv.tl.score_programs on the AnnData and save it, or show a gene."
            )
            self._kind.value = "gene"
        self.show_current()

    def _set_gene_completer(self, genes: list[str]) -> None:
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QCompleter

        completer = QCompleter(genes, self._gene.native)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.activated.connect(lambda text: setattr(self._gene, "value", text))
        self._gene.native.setCompleter(completer)

    # ----------------------------------------------------------------- actions
    def _open_file(self, path: Path | str | None = None) -> None:
        path = Path(path if path is not None else self._open.value)
        if not path.is_file():
            return
        self.open(path)

    def open(self, path: str | Path) -> None:
        """Load an ``.h5ad`` file and show its cells (with its tissue image) in the viewer.

        Files that cannot be shown leave the viewer as it was and say why in the widget.

        Parameters
        ----------
        path
            The ``.h5ad`` file.
        """
        import anndata as ad

        path = Path(path)
        try:
            adata = ad.read_h5ad(path)
            layers = layer_data(adata, name=path.stem, path=str(path))
        except (OSError, ValueError, KeyError) as error:
            self._say(f"Cannot show {path.name}: {error}")
            return
        added = [getattr(self.viewer, f"add_{kind}")(data, **kwargs) for data, kwargs, kind in layers]
        self._source.reset_choices()
        self._source.value = added[-1]

    def _gene_typed(self, text: str) -> None:
        adata = self.adata
        if adata is None or not text:
            return
        if match_gene(adata, text) is not None:
            self._kind.value = "gene"
            self.show_current()

    def _current_values(self) -> tuple[str, np.ndarray] | None:
        adata = self.adata
        cells = self.layer.metadata["cells"]
        if self._kind.value == "program":
            program = self._program.value
            if program is None:
                return None  # no scores (yet): the message says how to get them
            return str(program), program_values(adata, program, self._scores_key())[cells]
        if self._kind.value == "cell type":
            choice = self._cell_type.value
            if choice is None:
                raise KeyError("No cell types: run gv.tl.annotate on the AnnData and save it, or show a gene.")
            return str(choice), cell_type_values(adata, choice)[cells]
        query = str(self._gene.value).strip()
        if not query:
            return None  # nothing chosen yet: keep the message that says what to do
        gene = find_gene(adata, query)
        return gene, gene_values(adata, gene)[cells]

    def show_current(self, _value: Any = None) -> None:
        """Colour the layer by the chosen program or gene with the chosen colormap and contrast."""
        if self.layer is None:
            return
        try:
            current = self._current_values()
        except (KeyError, ValueError) as error:
            self._say(str(error.args[0]) if error.args else str(error))
            return
        if current is None:
            return
        name, values = current
        if values.dtype.kind in "OUS":  # assigned types: one colour per type
            self._colour_types(self.layer, values)
        else:
            limits = contrast_limits(values) if self._auto_contrast.value else tuple(self._contrast.value)
            self._set_contrast_range(values, limits)
            self._colour(self.layer, values, limits)
        self.layer.metadata["shown"] = (self._kind.value, name)
        genes = top_genes(self.adata, name, N_TOP_GENES, self._scores_key()) if self._kind.value == "program" else []
        self._top_genes.value = (
            ", ".join(genes) if genes else ("-" if self._kind.value != "program" else "not recorded")
        )
        self._say(f"showing {self._kind.value} {name}")

    def _colour(self, layer: Any, values: np.ndarray, limits: tuple[float, float]) -> None:
        features = layer.features.copy()
        features[OVERLAY_FEATURE] = values
        layer.features = features
        layer.face_colormap = self._colormap.value
        layer.face_contrast_limits = (float(limits[0]), float(limits[1]))
        layer.face_color = OVERLAY_FEATURE
        if layer.face_color_mode != "colormap":  # after cell types, coloured directly
            layer.face_color_mode = "colormap"
        layer.refresh_colors(update_color_mapping=False)

    def _colour_types(self, layer: Any, labels: np.ndarray) -> None:
        """One colour per cell type (tab20, in the order of ``obs``' categories), grey for unassigned."""
        from matplotlib import colormaps
        from matplotlib.colors import to_rgba

        from ..tl._annotate import UNASSIGNED

        types = [str(t) for t in pd.unique(labels) if t != UNASSIGNED]
        adata = self.adata
        column = adata.obs.get(Key.CELL_TYPE) if adata is not None else None
        if column is not None and isinstance(column.dtype, pd.CategoricalDtype):
            order = [str(c) for c in column.cat.categories]
            types = [t for t in order if t in types] + [t for t in types if t not in order]
        palette = colormaps["tab20"]
        colours = np.array([palette(i % 20) for i in range(len(types))] + [to_rgba(UNASSIGNED_COLOUR)])
        categories = pd.Categorical(labels, categories=[*types, UNASSIGNED])
        features = layer.features.copy()
        features[CELL_TYPE_FEATURE] = categories  # shown on hover
        layer.features = features
        layer.face_color = colours[categories.codes]  # one RGBA per cell (napari's direct colour mode)

    def _set_contrast_range(self, values: np.ndarray, limits: tuple[float, float]) -> None:
        finite = values[np.isfinite(values)]
        low = float(min(finite.min(), limits[0])) if finite.size else 0.0
        high = float(max(finite.max(), limits[1])) if finite.size else 1.0
        if high <= low:
            high = low + 1.0
        with self._contrast.changed.blocked():
            self._contrast.min, self._contrast.max = low, high
            self._contrast.value = (float(limits[0]), float(limits[1]))

    def _auto_contrast_changed(self, auto: bool) -> None:
        self._contrast.enabled = not auto
        self.show_current()

    def _contrast_moved(self, limits: tuple[float, float]) -> None:
        if self.layer is not None and not self._auto_contrast.value:
            self.layer.face_contrast_limits = (float(limits[0]), float(limits[1]))
            self.layer.refresh_colors(update_color_mapping=False)

    def keep_as_layer(self, _value: Any = None) -> Any:
        """Add a copy of the current view (tissue image included) as new layers; returns the new points layer."""
        layer = self.layer
        if layer is None or "shown" not in layer.metadata:
            self._say("Nothing shown yet to keep.")
            return None
        _, name = layer.metadata["shown"]
        image = next((other for other in self.viewer.layers if other.name == f"{layer.name} tissue"), None)
        if image is not None:
            self.viewer.add_image(image.data, name=f"{layer.name} {name} tissue", rgb=image.rgb)
        metadata = dict(layer.metadata)
        kept = self.viewer.add_points(
            layer.data,
            name=f"{layer.name} {name}",
            size=layer.size,
            border_width=0,
            features=layer.features.copy(),
            face_color=OVERLAY_FEATURE,
            face_colormap=layer.face_colormap,
            face_contrast_limits=layer.face_contrast_limits,
            metadata=metadata,
        )
        self._grid_changed(self._side_by_side.value)
        self._source.value = layer
        return kept

    def _grid_changed(self, enabled: bool) -> None:
        has_images = any(type(layer).__name__ == "Image" for layer in self.viewer.layers)
        grid = viewer_grid(self.viewer)
        grid.stride = 2 if has_images else 1  # a tissue image and its points per tile
        grid.enabled = bool(enabled)

    def score_programs(self, _value: Any = None) -> Any:
        """Score the file's programs in a worker thread (napari shows its progress); returns the worker."""
        from napari.qt.threading import thread_worker

        adata = self.adata
        programs_key = None if adata is None else unscored_programs_key(adata)
        if programs_key is None:
            self._say("No programs to score: run gv.tl.programs on the AnnData first.")
            return None
        layer, scores_key = self.layer, self._scores_key()
        worker = thread_worker(
            _score_in_background, progress={"total": 0, "desc": "geneverse: scoring programs"}, start_thread=False
        )(adata, programs_key, scores_key)
        worker.returned.connect(lambda result: self._scores_ready(layer, scores_key, result))
        worker.errored.connect(lambda error: self._say(f"Scoring failed: {error}"))
        self._score.enabled = False
        self._say("Scoring programs in the background...")
        self._worker = worker
        worker.start()
        return worker

    def _scores_ready(self, layer: Any, scores_key: str, result: tuple[pd.DataFrame, dict]) -> None:
        scores, record = result
        adata = layer.metadata[ADATA_KEY]
        write_result(adata, scores_key, record, obsm={scores_key: scores})
        features = layer.features.copy()
        for program in scores.columns:
            features[str(program)] = scores[program].to_numpy(dtype=float)[layer.metadata["cells"]]
        layer.features = features
        self._score.enabled = True
        if self.layer is layer:
            self._kind.value = "program"
            self._source_changed()
