"""A map of what the network sees: every picture of a subset as the vector the classifier reads (the
input of the final Dense layer), projected to 2-D (PCA to 50 dimensions, then t-SNE), cached in
the run directory next to the evaluation it is drawn from.

The points, their order, true classes and probabilities are those of core.evaluate's evaluation of
the same subset, so the map and the Evaluate page's scores always agree. Like TensorBoard's
embedding projector, inside the workflow.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import evaluate
from core.fileio import atomic_write_json, read_json
from core.images import thumbnail_uri
from core.rundir import run_dir

MAP_VERSION = 2  # 2: thumbnails
THUMB_SIZE = 64  # px, the longer side of a hover thumbnail
SUBSETS = {"test": ("test",), "all": ("train", "val", "test")}
PCA_DIMS = 50  # t-SNE's authors' advice: reduce to ~50 dimensions first (faster, less noise)
PERPLEXITY = 30.0
SEED = 0
MIN_PICTURES = 5  # t-SNE needs more pictures than neighbours to weigh
BATCH_SIZE = 32
MapProgress = Callable[[str, int, int], None]  # (stage, done, total): "decoding" | "predicting" |
#   "features" | "layout" (no steps: done 0, total 0)


class MapError(ValueError):
    """A map that cannot be drawn (too few pictures...), said in a sentence for the page."""


@dataclass
class EmbeddingMap:
    """One subset of a run's split as 2-D points.

    xy: (N, 2) float64 t-SNE coordinates. paths (relative to dataset_root), labels (N,) int and
    probs (N, C) float64 come from the evaluation, in its order. seconds: how long features and
    layout took when computed (kept in the cache, so a cached map can still say it). thumbs: one
    small PNG data URI per picture (core.images.thumbnail_uri, as the model sees it), for the hover.
    """

    run_id: str
    which: str
    subset: str
    classes: list[str]
    paths: list[str]
    labels: np.ndarray
    probs: np.ndarray
    xy: np.ndarray
    dataset_root: str = ""
    feature_dims: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    key: dict = field(default_factory=dict)
    cached: bool = False
    thumbs: list[str] = field(default_factory=list)

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def right(self) -> np.ndarray:
        return self.predicted == self.labels

    def file(self, i: int) -> str:
        """Absolute path of picture i."""
        return str(Path(self.dataset_root) / self.paths[i]) if self.dataset_root else self.paths[i]

    def to_json(self) -> dict:
        return {
            "version": MAP_VERSION,
            "key": self.key,
            "run_id": self.run_id,
            "which": self.which,
            "subset": self.subset,
            "classes": self.classes,
            "dataset_root": self.dataset_root,
            "paths": self.paths,
            "labels": [int(y) for y in self.labels],
            "probs": [[float(v) for v in row] for row in self.probs],
            "xy": [[float(v) for v in row] for row in self.xy],
            "feature_dims": self.feature_dims,
            "seconds": self.seconds,
            "thumbs": self.thumbs,
        }


def feature_model(model):
    """Cached model [images (N, S, S, 3), zeros] -> [A, F, P] where F (N, features) is the input of the
    output layer, found from the model's graph, nested bases and shared head layers included: the
    model core.explain's Grad-CAM already builds (the zeros feed its unused perturbation input)."""
    from core.explain import default_layer
    from core.explain.graph import gradient_model

    return gradient_model(model, default_layer(model))


def features(
    model,
    images: np.ndarray,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Images (N, S, S, 3), uint8 or float in [0, 255] -> penultimate features (N, F) float32, in batches."""
    from keras import ops

    from core.explain.graph import image_batch

    extractor = feature_model(model)
    zeros = tuple(extractor.inputs[1].shape[1:])
    out = []
    for i in range(0, len(images), batch_size):
        batch = image_batch(model, images[i : i + batch_size])
        _, f, _ = extractor([batch, np.zeros((len(batch), *zeros), np.float32)], training=False)
        f = ops.convert_to_numpy(ops.cast(f, "float32"))
        out.append(f.reshape(len(f), -1))
        if progress:
            progress(min(i + batch_size, len(images)), len(images))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def project(feats: np.ndarray, seed: int = SEED) -> np.ndarray:
    """(N, F) features -> (N, 2) t-SNE coordinates, after PCA to at most PCA_DIMS dimensions.

    Deterministic for a seed. The perplexity (neighbours each point weighs) is 30, or less for
    small sets (t-SNE needs it below N)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(feats, dtype=np.float64)
    n = len(x)
    if n < MIN_PICTURES:
        raise MapError(f"A map needs at least {MIN_PICTURES} pictures; this set has {n}.")
    dims = min(PCA_DIMS, n, x.shape[1])
    if dims < x.shape[1]:
        x = PCA(dims, random_state=seed).fit_transform(x)
    perplexity = min(PERPLEXITY, (n - 1) / 3)
    tsne = TSNE(2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed)
    return tsne.fit_transform(x).astype(np.float64)


def map_path(run_path: Path, which: str, subset: str) -> Path:
    return run_path / f"map-{which}-{subset}.json"


def _key(results: list[evaluate.EvalResult]) -> dict:
    """What a map depends on: the evaluations' keys (model file, split, files now) and the settings."""
    key = {
        "version": MAP_VERSION,
        "pca_dims": PCA_DIMS,
        "perplexity": PERPLEXITY,
        "seed": SEED,
        "evaluations": [r.key for r in results],
    }
    return json.loads(json.dumps(key))  # as it reads back from the file, so == compares like with like


def _check_subset(subset: str) -> tuple[str, ...]:
    if subset not in SUBSETS:
        raise MapError(f"Choose the pictures to map: {' or '.join(SUBSETS)}, not {subset!r}.")
    return SUBSETS[subset]


def cached_map(
    run_id: str, which: str = "best", subset: str = "test", workspace: str | os.PathLike | None = None
) -> EmbeddingMap | None:
    """The stored map while its evaluations are still valid (same model file, same pictures); else None."""
    results = [evaluate.cached_evaluation(run_id, which, s, workspace) for s in _check_subset(subset)]
    if any(r is None for r in results):
        return None
    path = map_path(run_dir(run_id, workspace), which, subset)
    try:
        d = read_json(path)
        if d.get("key") != _key(results):
            return None
        return EmbeddingMap(
            run_id=d["run_id"],
            which=d["which"],
            subset=d["subset"],
            classes=list(d["classes"]),
            paths=list(d["paths"]),
            labels=np.asarray(d["labels"], dtype=np.int64),
            probs=np.asarray(d["probs"], dtype=np.float64),
            xy=np.asarray(d["xy"], dtype=np.float64).reshape(-1, 2),
            dataset_root=d.get("dataset_root", ""),
            feature_dims=int(d.get("feature_dims", 0)),
            seconds=dict(d.get("seconds", {})),
            key=d["key"],
            cached=True,
            thumbs=list(d.get("thumbs", [])),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def embed_run(
    run_id: str,
    which: str = "best",
    subset: str = "test",
    workspace: str | os.PathLike | None = None,
    progress: MapProgress | None = None,
    refresh: bool = False,
) -> EmbeddingMap:
    """The map of a run's model (best or last) on its test pictures ("test") or on all of its split
    ("all"), stored as map-<which>-<subset>.json in the run directory and read back until the model
    file or the pictures change (refresh=True draws it anew). Scores the subsets first when they have
    no evaluation yet (core.evaluate, cached there too)."""
    from core import cache, modelfile
    from core.data import load_split

    subsets = _check_subset(subset)
    if not refresh:
        found = cached_map(run_id, which, subset, workspace)
        if found is not None:
            return found
    results = [evaluate.evaluate_run(run_id, which, s, workspace, progress) for s in subsets]
    run = modelfile.from_run(run_id, which, workspace)
    split = load_split(results[0].key["split"], workspace)
    size = (run.input_size, run.input_size)
    started = time.perf_counter()
    parts, thumbs, done, total = [], [], 0, sum(r.n for r in results)
    for s, r in zip(subsets, results):
        # The same decoded arrays the evaluation fed the model (the cache keeps them on disk).
        arrays = cache.split_arrays(
            split, s, size, run.resize_policy, workspace=run_dir(run_id, workspace).parents[1]
        )
        if list(arrays.paths) != r.paths:
            raise MapError("The pictures changed while the map was drawn. Try again.")
        parts.append(
            features(
                run.model,
                arrays.images,
                progress=(lambda d, t, base=done: progress("features", base + d, total))
                if progress
                else None,
            )
        )
        thumbs += [thumbnail_uri(image, THUMB_SIZE) for image in arrays.images]
        done += r.n
    feats = np.concatenate(parts)
    middle = time.perf_counter()
    if progress:
        progress("layout", 0, 0)
    xy = project(feats)
    result = EmbeddingMap(
        run_id=run_id,
        which=results[0].which,
        subset=subset,
        classes=list(results[0].classes),
        paths=[p for r in results for p in r.paths],
        labels=np.concatenate([r.labels for r in results]),
        probs=np.concatenate([r.probs for r in results]),
        xy=xy,
        dataset_root=results[0].dataset_root,
        feature_dims=int(feats.shape[1]),
        seconds={"features": round(middle - started, 2), "layout": round(time.perf_counter() - middle, 2)},
        key=_key(results),
        thumbs=thumbs,
    )
    atomic_write_json(
        map_path(run_dir(run_id, workspace), which, subset), result.to_json(), make_parents=False
    )
    return result
