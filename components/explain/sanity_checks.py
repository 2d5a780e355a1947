"""Sanity checks for saliency maps (Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018): a map that does not change when the model's weights or the training labels
are randomized cannot be explaining what the model learned (it is an edge detector).

* Model-parameter randomization, cascading: re-initialize the layers from the output down,
  cumulatively, and compare each step's maps with the trained model's maps. A faithful
  method's similarity falls as soon as the top layers are random.
* Data randomization: train the same architecture on permuted labels; its maps should
  look unlike the maps of the model trained on the true labels.

Similarity, per image then averaged: Spearman rank correlation of the flattened maps (and
of their absolute values, the paper's second variant, which only differs for signed maps)
and SSIM (data_range 1, maps are in [0, 1]).

Contract of `method`: components/explain/__init__.py, `method(model, images) -> (n, h, w)`
heatmaps in [0, 1] with images (n, h, w, c) float32 raw pixels in [0, 255]; bind options
with functools.partial.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Mapping, Sequence

import keras
import numpy as np
from scipy import stats
from skimage.metrics import structural_similarity

Method = Callable[[keras.Model, np.ndarray], np.ndarray]
REFERENCE = "Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS 2018"
# Both tests' verdict: a method passes when its maps from the randomized model correlate
# below this (mean Spearman) with the trained model's. The paper sets no threshold.
PASS_THRESHOLD = 0.5


# --------------------------------------------------------------------------- similarity


def spearman_per_image(a: np.ndarray, b: np.ndarray, absolute: bool = False) -> np.ndarray:
    """Spearman rank correlation of each pair of maps (n, ...) flattened: (n,) float.

    Equal to scipy.stats.spearmanr per image (Pearson correlation of average ranks), but
    ranked in one batched call. Spearman is undefined for a constant map (e.g. Grad-CAM of
    a randomized network whose ReLU map is all zero); we score it 0 (no shared ranking)
    unless both maps are constant and equal (1), so the mean stays finite.
    """
    a = np.asarray(a, dtype="float64").reshape(len(a), -1)
    b = np.asarray(b, dtype="float64").reshape(len(b), -1)
    if absolute:
        a, b = np.abs(a), np.abs(b)
    ra = stats.rankdata(a, axis=1)
    rb = stats.rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    norm = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    defined = norm > 0
    rho = np.where(defined, (ra * rb).sum(axis=1) / np.where(defined, norm, 1.0), 0.0)
    both_constant_equal = ~defined & np.all(a == b, axis=1)
    return np.clip(np.where(both_constant_equal, 1.0, rho), -1.0, 1.0)


def ssim_per_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM of each pair of (n, h, w) maps in [0, 1] (data_range=1): (n,) float."""
    a = np.asarray(a, dtype="float64")
    b = np.asarray(b, dtype="float64")
    return np.array([structural_similarity(x, y, data_range=1.0) for x, y in zip(a, b)])


def compare_maps(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Mean Spearman, Spearman of |maps|, SSIM, and how many `other` maps are constant."""
    flat = np.asarray(other).reshape(len(other), -1)
    return {
        "spearman": float(spearman_per_image(reference, other).mean()),
        "spearman_abs": float(spearman_per_image(reference, other, absolute=True).mean()),
        "ssim": float(ssim_per_image(reference, other).mean()),
        "constant_maps": int((flat.max(axis=1) == flat.min(axis=1)).sum()),
    }


# --------------------------------------------------------------------------- layers


def _leaf_layers(model: keras.Model, prefix: str = "") -> Iterator[tuple[str, keras.layers.Layer]]:
    """(path, layer) from the output down; nested models (transfer backbones) are entered,
    so their layers are randomized one at a time like the outer ones."""
    for layer in reversed(model.layers):
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer, f"{prefix}{layer.name}/")
        else:
            yield f"{prefix}{layer.name}", layer


def randomizable_layers(model: keras.Model) -> list[str]:
    """Paths of the layers with learned weights, top (output) first.

    A layer counts when it has weights that are trainable, or would be if it were not
    frozen (a frozen ImageNet backbone is still learned). Layers whose weights are never
    trainable (Normalization's adapted statistics) are left alone.
    """
    return [
        path
        for path, layer in _leaf_layers(model)
        if layer.weights and (layer.trainable_weights or not layer.trainable)
    ]


def _find_layer(model: keras.Model, path: str) -> keras.layers.Layer:
    layer: Any = model
    for name in path.split("/"):
        layer = layer.get_layer(name)
    return layer


def _initializer_for(layer: keras.layers.Layer, variable_name: str):
    """The layer's own initializer of a variable: kernel -> kernel_initializer, gamma ->
    gamma_initializer, moving_mean -> moving_mean_initializer; the depthwise/pointwise
    kernels of separable convs use depthwise_/pointwise_initializer."""
    for attribute in (
        f"{variable_name}_initializer",
        f"{variable_name.removesuffix('_kernel')}_initializer",
        "depthwise_initializer" if "Depthwise" in type(layer).__name__ else "",
    ):
        initializer = getattr(layer, attribute, None) if attribute else None
        if initializer is not None:
            return initializer
    return None


def reinitialize_layer(layer: keras.layers.Layer, seed: int) -> None:
    """Re-draws every weight of `layer` in place, seeded.

    With the layer's own initializer (re-created with an explicit seed, so runs repeat);
    a variable with no known initializer gets a seeded normal with the trained values'
    standard deviation (0.05, Keras' RandomNormal default, if they were constant).
    """
    rng = np.random.default_rng(seed)
    for index, variable in enumerate(layer.weights):
        initializer = _initializer_for(layer, variable.name)
        shape, dtype = tuple(variable.shape), variable.dtype
        if initializer is not None:
            config = initializer.get_config()
            if "seed" in config:
                config["seed"] = int(seed * 1000 + index)
            value = type(initializer).from_config(config)(shape=shape, dtype=dtype)
        else:
            std = float(np.std(np.asarray(variable))) or 0.05
            value = rng.normal(0.0, std, shape)
        variable.assign(np.asarray(value).astype(np.asarray(variable).dtype))


# --------------------------------------------------------------------------- checks


def spread(values: Sequence[float]) -> list[float]:
    """[min, max] of per-draw figures: the interval a verdict is judged on."""
    return [float(np.min(values)), float(np.max(values))]


def cascading_randomization(
    model: keras.Model,
    images: np.ndarray,
    method: Method,
    seed: int = 0,
    *,
    cascade: bool = True,
    repeats: int = 1,
    layer_names: Sequence[str] | None = None,
    reference_maps: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Model-parameter randomization test: one dict per step, top layer first,
    {"layer", "depth" (1-based), "spearman", "spearman_abs", "ssim", "constant_maps",
    "spearman_draws", "spearman_interval"}.

    Works on a clone (keras.models.clone_model + set_weights): `model` is never touched.
    cascade=True randomizes cumulatively (step k: the top k layers are random); False is
    the paper's independent variant (step k: only layer k is random). `layer_names`
    restricts the steps (paths as randomizable_layers gives them, top first).

    `repeats` > 1 repeats the test with that many independent draws of the random
    weights. One draw is noisy when a layer is small: with a one-unit sigmoid head,
    Grad-CAM's channel weights are the head's kernel, so a single random draw can
    correlate with the trained map by chance (or anti-correlate, when it flips signs),
    for all images at once; averaging over images alone does not remove that. The
    similarities are means over draws, "spearman_draws" each draw's mean over images and
    "spearman_interval" their [min, max]; "constant_maps" is summed over draws.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    images = np.asarray(images, dtype="float32")
    original = reference_maps if reference_maps is not None else method(model, images)
    clone = keras.models.clone_model(model)
    trained_weights = model.get_weights()
    paths = list(layer_names or randomizable_layers(model))
    draws: list[list[dict[str, Any]]] = []
    for repeat in range(repeats):
        clone.set_weights(trained_weights)
        steps = []
        for depth, path in enumerate(paths, start=1):
            if not cascade:
                clone.set_weights(trained_weights)  # only this layer random
            reinitialize_layer(_find_layer(clone, path), seed + 1009 * repeat + depth)
            steps.append(compare_maps(original, method(clone, images)))
        draws.append(steps)
    results = []
    for depth, path in enumerate(paths, start=1):
        per_draw = [d[depth - 1] for d in draws]
        step: dict[str, Any] = {"layer": path, "depth": depth}
        for key in per_draw[0]:
            values = [d[key] for d in per_draw]
            step[key] = int(sum(values)) if key == "constant_maps" else float(np.mean(values))
        step["spearman_draws"] = [d["spearman"] for d in per_draw]
        step["spearman_interval"] = spread(step["spearman_draws"])
        results.append(step)
    return results


def _fit(
    model_builder: Callable[[], keras.Model],
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int,
    batch_size: int,
    seed: int,
    verbose: int,
) -> keras.Model:
    """A fresh model from `model_builder`, seeded, fitted on (images, labels).

    An uncompiled model is compiled with Adam and the cross-entropy matching its head and
    labels (one sigmoid unit: binary; integer labels: sparse categorical; else categorical).
    """
    keras.utils.set_random_seed(seed)  # same initial weights for true and permuted labels
    model = model_builder()
    if not model.compiled:
        units = model.outputs[0].shape[-1]
        loss = (
            "binary_crossentropy"
            if units == 1
            else "sparse_categorical_crossentropy"
            if labels.ndim == 1
            else "categorical_crossentropy"
        )
        model.compile(keras.optimizers.Adam(1e-3), loss)
    model.fit(images, labels, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose)
    return model


def train_accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy on the given data (threshold 0.5 for a sigmoid head, argmax otherwise)."""
    from components.explain.scores import model_outputs

    outputs = model_outputs(model, images)
    predicted = (outputs[:, 0] >= 0.5).astype(int) if outputs.shape[1] == 1 else outputs.argmax(1)
    truth = labels.argmax(1) if labels.ndim == 2 else labels.astype(int)
    return float((predicted == truth).mean())


def data_randomization(
    model_builder: Callable[[], keras.Model],
    train_images: np.ndarray,
    train_labels: np.ndarray,
    eval_images: np.ndarray,
    methods: Mapping[str, Method],
    epochs: int = 5,
    seed: int = 0,
    *,
    trained_model: keras.Model | None = None,
    batch_size: int = 32,
    pass_threshold: float = PASS_THRESHOLD,
    draws: int = 1,
    verbose: int = 0,
) -> dict[str, Any]:
    """Data randomization test: the maps of a model trained on permuted labels (seeded)
    against the maps of the same architecture trained on the true labels, per method.

    `draws` permuted-label models (draw d: permutation and initialization seeded with
    seed + d) are each compared with the one true-label model; per method the figures
    are means over draws, "spearman_draws" each draw's, "spearman_interval" their
    [min, max], and "passes" is judged on the interval's upper end.

    `model_builder()` returns a fresh model (compiled or not, see _fit); the true-label
    model is trained here with the same seed, data and epochs unless `trained_model` is
    given (its "true_label_train_accuracy" is then measured on `train_images` all the
    same). Every model is trained once and every method compares their maps. The train
    accuracies (the permuted-label one averaged over draws) are reported because the test
    is only meaningful when the permuted-label models have fitted (memorized) their
    labels to some degree. "passes" is the same heuristic as the cascading test's:
    Spearman below `pass_threshold` in every draw.
    """
    train_images = np.asarray(train_images, dtype="float32")
    train_labels = np.asarray(train_labels)
    eval_images = np.asarray(eval_images, dtype="float32")
    if draws < 1:
        raise ValueError("draws must be >= 1")
    true_model = (
        trained_model
        if trained_model is not None
        else _fit(model_builder, train_images, train_labels, epochs, batch_size, seed, verbose)
    )
    true_maps = {name: method(true_model, eval_images) for name, method in methods.items()}
    per_draw: dict[str, list[dict[str, float]]] = {name: [] for name in methods}
    random_accuracy, agreement = [], []
    for draw in range(draws):
        order = np.random.default_rng(seed + draw).permutation(len(train_labels))
        permuted = train_labels[order]
        random_model = _fit(
            model_builder, train_images, permuted, epochs, batch_size, seed + draw, verbose
        )
        random_accuracy.append(train_accuracy(random_model, train_images, permuted))
        agreement.append(
            float(
                np.mean(np.all((permuted == train_labels).reshape(len(train_labels), -1), axis=1))
            )
        )
        for name, method in methods.items():
            per_draw[name].append(compare_maps(true_maps[name], method(random_model, eval_images)))
    compared = {}
    for name, results in per_draw.items():
        spearman = [r["spearman"] for r in results]
        compared[name] = {
            **{
                key: (
                    int(sum(r[key] for r in results))
                    if key == "constant_maps"
                    else float(np.mean([r[key] for r in results]))
                )
                for key in results[0]
            },
            "spearman_draws": spearman,
            "spearman_interval": spread(spearman),
            "passes": bool(max(spearman) < pass_threshold),
        }
    return {
        "test": "data randomization: same architecture trained on permuted labels",
        "epochs": epochs,
        "seed": seed,
        "n_train": len(train_images),
        "n_eval": len(eval_images),
        "trained_model_given": trained_model is not None,
        "draws": draws,
        "true_label_train_accuracy": train_accuracy(true_model, train_images, train_labels),
        "random_label_train_accuracy": float(np.mean(random_accuracy)),
        "label_agreement_after_permutation": float(np.mean(agreement)),
        "pass_threshold_spearman": pass_threshold,
        "verdict_on": "upper end of spearman_interval (max over draws)",
        "methods": compared,
    }


# --------------------------------------------------------------------------- reporting


def plot_cascading(
    results_by_method: Mapping[str, Sequence[Mapping[str, Any]]],
    png_path: str | os.PathLike,
    tensorboard_dir: str | os.PathLike | None = None,
):
    """Spearman and SSIM against the randomized depth, one line per method (the mean over
    draws; shaded: the [min, max] over draws); the x axis starts at the trained model
    (similarity 1) and names the last layer randomized."""
    from components.reporting.figures import plt, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
    names: list[str] = []
    for method, steps in results_by_method.items():
        names = max(names, ["trained"] + [s["layer"] for s in steps], key=len)
        x = np.arange(len(steps) + 1)
        for ax, key in zip(axes, ("spearman", "ssim")):
            line = ax.plot(x, [1.0] + [s[key] for s in steps], marker="o", label=method)[0]
            if key == "spearman" and steps and "spearman_interval" in steps[0]:
                low = [1.0] + [s["spearman_interval"][0] for s in steps]
                high = [1.0] + [s["spearman_interval"][1] for s in steps]
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    for ax, title in zip(axes, ("Spearman rank correlation", "SSIM")):
        ax.set_title(f"{title} with the trained model's maps")
        ax.set_xticks(np.arange(len(names)), names, rotation=60, ha="right", fontsize=8)
        ax.set_xlabel("randomized down to layer (cascading, top first)")
        ax.axhline(0.0, color="grey", lw=0.5)
        ax.set_ylim(-0.2, 1.05)
        ax.legend(fontsize=8)
    fig.suptitle("Cascading model-parameter randomization (Adebayo et al., 2018)")
    return save_figure(fig, png_path, tensorboard_dir, tag="sanity/cascading_randomization")


def sanity_report(
    model: keras.Model,
    images: np.ndarray,
    methods: Mapping[str, Method],
    *,
    seed: int = 0,
    layer_names: Sequence[str] | None = None,
    reference_maps: Mapping[str, np.ndarray] | None = None,
    data_randomization_results: Mapping[str, Any] | None = None,
    pass_threshold: float = PASS_THRESHOLD,
    draws: int = 1,
    png_path: str | os.PathLike | None = None,
    tensorboard_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Cascading randomization for each method over `draws` draws of the random weights,
    as a JSON-able dict (explainer/sanity.json), and the plot when `png_path` is given.

    "passes" per method is a heuristic, not the paper's (it has no threshold): the mean
    Spearman correlation with the fully randomized model is below `pass_threshold` in
    every draw, i.e. the upper end of "final_spearman_interval" (min, max over draws).
    `reference_maps` (maps of the trained model, by method) saves recomputing them;
    `data_randomization_results` (what data_randomization returns) is stored as is.
    """
    cascading = {
        name: cascading_randomization(
            model,
            images,
            method,
            seed,
            repeats=draws,
            layer_names=layer_names,
            reference_maps=(reference_maps or {}).get(name),
        )
        for name, method in methods.items()
    }
    summary: dict[str, dict[str, Any]] = {}
    for name, steps in cascading.items():
        final = steps[-1] if steps else None  # a model with no learned weights: no verdict
        summary[name] = {
            "final_spearman": final and final["spearman"],
            "final_spearman_interval": final and final["spearman_interval"],
            "final_ssim": final and final["ssim"],
            "passes": (
                None if final is None else bool(final["spearman_interval"][1] < pass_threshold)
            ),
        }
    if png_path is not None:
        plot_cascading(cascading, png_path, tensorboard_dir)
    report: dict[str, Any] = {
        "reference": REFERENCE,
        "test": "cascading model-parameter randomization, top layer first",
        "seed": seed,
        "n_images": int(len(images)),
        "draws": draws,
        "pass_threshold_spearman": pass_threshold,
        "verdict_on": "upper end of final_spearman_interval (max over draws)",
        "summary": summary,
        "cascading": cascading,
    }
    if data_randomization_results:
        report["data_randomization"] = dict(data_randomization_results)
    return report
