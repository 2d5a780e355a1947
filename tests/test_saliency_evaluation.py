"""Evaluating the heatmaps themselves: sanity checks (Adebayo et al. 2018), deletion and
insertion (RISE), and localization against known masks (pointing game, IoU).

Small on purpose (2 busy CPU cores): 40 px phantoms and 32 px blob images, models of a
few thousand weights trained for a few epochs, all seeded.
"""

from __future__ import annotations

import functools
import inspect
import json

import keras
import numpy as np
import pytest
from PIL import Image
from scipy import stats

from components.explain.faithfulness import (
    area_under_curve,
    deletion_insertion,
    faithfulness_report,
    plot_faithfulness,
    saliency_ranks,
)
from components.explain.gradcam import grad_cam
from components.explain.integrated_gradients import integrated_gradients
from components.explain.localization import (
    heatmap_regions,
    load_masks,
    localization_report,
    mask_iou,
    pointing_hits,
)
from components.explain.sanity_checks import (
    cascading_randomization,
    data_randomization,
    plot_cascading,
    randomizable_layers,
    sanity_report,
    spearman_per_image,
    ssim_per_image,
)
from datasets.synthetic_cxr.phantom import make_phantom
from models.cnn import build_cnn
from tests.conftest import REPO_ROOT
from tests.support.blob_models import blob_model  # noqa: E402
from tests.support.tensorboard_events import image_tags

SIZE = 32  # blob images
BLOB = 6
PHANTOM_SIZE = 40
IG = functools.partial(integrated_gradients, steps=16)  # enough for a ranking


def blob_images(n: int, seed: int, with_blob: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Dim noise (raw pixels 0-10) with a bright 6 x 6 blob (200); blob masks (n, h, w) 0/1."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 10, (n, SIZE, SIZE, 1)).astype("float32")
    masks = np.zeros((n, SIZE, SIZE), np.uint8)
    if with_blob:
        for image, mask in zip(images, masks):
            r, c = rng.integers(0, SIZE - BLOB, 2)
            image[r : r + BLOB, c : c + BLOB] = 200.0
            mask[r : r + BLOB, c : c + BLOB] = 1
    return images, masks


def small_blob_cnn() -> keras.Model:
    """Raw pixels in, like models/cnn.py; no batch norm (a few epochs leave its moving
    statistics far from the batch ones)."""
    layers = keras.layers
    inputs = keras.Input((SIZE, SIZE, 1))
    h = layers.Rescaling(1.0 / 255.0)(inputs)
    h = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(h)
    h = layers.MaxPooling2D()(h)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(h)
    h = layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, layers.Dense(1, activation="sigmoid", name="prediction")(h))


def blob_training_data(n_per_class: int = 160) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    positives, masks = blob_images(n_per_class, seed=1)
    negatives, empty = blob_images(n_per_class, seed=2, with_blob=False)
    noise = np.random.default_rng(3).uniform(0, 40, (2 * n_per_class, SIZE, SIZE, 1))
    x = np.concatenate([positives, negatives]) + noise.astype("float32")
    y = np.concatenate([np.ones(n_per_class), np.zeros(n_per_class)]).astype("float32")
    return x, y, np.concatenate([masks, empty])


@pytest.fixture(scope="module")
def blob_cnn() -> keras.Model:
    keras.utils.set_random_seed(0)
    x, y, _ = blob_training_data()
    model = small_blob_cnn()
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    model.fit(x, y, batch_size=32, epochs=6, shuffle=True, verbose=0)
    return model


@pytest.fixture(scope="module")
def phantom_cnn() -> tuple[keras.Model, np.ndarray, np.ndarray, np.ndarray]:
    """The default architecture (models/cnn.py, batch norm included), three narrow blocks,
    trained a few epochs on 200 phantoms at 40 px: (model, images, labels, lesion masks)."""
    labels = np.arange(200) % 2
    drawn = [make_phantom(1000 + i, bool(label), PHANTOM_SIZE) for i, label in enumerate(labels)]
    images = np.stack([image for image, _ in drawn])[..., None].astype("float32")
    masks = np.stack([mask for _, mask in drawn])
    keras.utils.set_random_seed(0)
    model = build_cnn(PHANTOM_SIZE, filters=(8, 16, 32), dropout=0.0, l2=0.0)
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
    model.fit(images, labels.astype("float32"), batch_size=32, epochs=6, verbose=0)
    return model, images, labels, masks


def image_as_map(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """A 'method' that ignores the model (an edge detector would too): it must fail."""
    return images[..., 0] / 255.0


# --------------------------------------------------------------------------- (d) similarity


def test_identical_maps_have_spearman_and_ssim_one():
    maps = np.random.default_rng(0).random((3, 24, 24))
    np.testing.assert_allclose(spearman_per_image(maps, maps), 1.0)
    np.testing.assert_allclose(ssim_per_image(maps, maps), 1.0)
    constant = np.zeros((2, 24, 24))
    np.testing.assert_allclose(spearman_per_image(constant, constant), 1.0)
    np.testing.assert_allclose(spearman_per_image(maps[:2], constant), 0.0)  # undefined -> 0
    # The batched ranking is scipy's spearmanr, image by image (ties included).
    other = np.round(np.random.default_rng(1).random((3, 24, 24)) * 4) / 4
    expected = [stats.spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(maps, other)]
    np.testing.assert_allclose(spearman_per_image(maps, other), expected, atol=1e-12)


# --------------------------------------------------------------------------- (a) sanity


def test_cascading_randomization_decorrelates_gradcam_but_not_a_model_blind_map(phantom_cnn):
    model, images, labels, masks = phantom_cnn
    before = [w.copy() for w in model.get_weights()]
    eval_images = images[1:32:2]  # 16 pneumonia phantoms
    steps = cascading_randomization(model, eval_images, grad_cam, seed=0, repeats=3)
    # Top first: the head, then each batch norm and conv down to the first conv.
    assert [s["layer"] for s in steps] == randomizable_layers(model)
    assert steps[0]["layer"] == "prediction" and steps[-1]["layer"] == "block1_conv1"
    assert len(steps) == 7
    spearman = np.array([s["spearman"] for s in steps])
    ssim = np.array([s["ssim"] for s in steps])
    # Randomizing the head already changes Grad-CAM (its channel weights are the head's
    # kernel) and nothing brings the trained maps back.
    assert spearman.max() < 0.75 and spearman.mean() < 0.5, spearman
    assert ssim.max() < 0.5, ssim
    # The control: a map that ignores the model passes through untouched.
    control = cascading_randomization(model, eval_images, image_as_map, seed=0)
    assert all(
        s["spearman"] == pytest.approx(1.0) and s["ssim"] == pytest.approx(1.0) for s in control
    )
    # The trained model itself is untouched; runs repeat.
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)
    again = cascading_randomization(model, eval_images, grad_cam, seed=0, repeats=3)
    np.testing.assert_allclose([s["spearman"] for s in again], spearman, atol=1e-6)
    # Only pneumonia phantoms count for localization (normals have empty masks).
    report = localization_report(grad_cam(model, images[:20]), masks[:20], labels[:20] == 1)
    assert report["n_counted"] == 10 and len(report["per_image"]) == 10


def test_cascading_randomization_decorrelates_integrated_gradients(phantom_cnn):
    """The issue's bar for IG too: maps of the fully randomized model correlate below 0.5
    with the trained model's. IG's map is unsmoothed by default because a smoothed map
    keeps the image's brightness envelope through any randomization (checked here)."""
    model, images, _, _ = phantom_cnn
    eval_images = images[1:32:2]
    final = cascading_randomization(model, eval_images, IG, seed=0, repeats=2)[-1]
    assert final["layer"] == "block1_conv1"
    assert final["spearman"] < 0.5, final
    smoothed = functools.partial(integrated_gradients, steps=16, smooth_sigma=2.0)
    assert (
        cascading_randomization(model, eval_images, smoothed, seed=0)[-1]["spearman"]
        > final["spearman"]
    )


def test_independent_randomization_and_report(phantom_cnn, tmp_path):
    model, images, _, _ = phantom_cnn
    top_two = randomizable_layers(model)[:2]
    independent = cascading_randomization(
        model, images[1:9:2], grad_cam, seed=1, cascade=False, layer_names=top_two
    )
    assert [s["layer"] for s in independent] == top_two
    report = sanity_report(
        model,
        images[1:9:2],
        {"gradcam": grad_cam, "control": image_as_map},
        layer_names=top_two,
        png_path=tmp_path / "sanity.png",
        data_randomization_results={"methods": {"gradcam": {"spearman": 0.1}}},
    )
    json.dumps(report, allow_nan=False)
    assert report["summary"]["control"]["passes"] is False
    assert set(report["cascading"]) == {"gradcam", "control"}
    assert (tmp_path / "sanity.png").stat().st_size > 0


def test_data_randomization_trains_on_permuted_labels(blob_cnn):
    x, y, _ = blob_training_data(48)
    eval_images, _ = blob_images(6, seed=40)
    result = data_randomization(
        small_blob_cnn,
        x,
        y,
        eval_images,
        {"gradcam": grad_cam, "control": image_as_map},
        epochs=3,
        seed=0,
        trained_model=blob_cnn,
    )
    json.dumps(result, allow_nan=False)
    assert result["true_label_train_accuracy"] > 0.95
    assert result["true_label_train_accuracy"] > result["random_label_train_accuracy"] + 0.2
    gradcam = result["methods"]["gradcam"]
    assert -1.0 <= gradcam["spearman"] < 0.9 and gradcam["ssim"] < 0.9
    # A "map" that is the image itself ignores the model: identical maps, reported failing.
    assert result["methods"]["control"]["spearman"] == pytest.approx(1.0)
    assert result["methods"]["control"]["passes"] is False


# --------------------------------------------------------------------------- (b) faithfulness


@pytest.mark.parametrize("name,method", [("gradcam", grad_cam), ("integrated_gradients", IG)])
def test_deletion_and_insertion_beat_a_random_order(name, method, blob_cnn):
    images, _ = blob_images(8, seed=50)
    images += np.random.default_rng(51).uniform(0, 40, images.shape).astype("float32")
    result = deletion_insertion(
        blob_cnn, images, method(blob_cnn, images), steps=20, insertion_baseline="black", seed=0
    )
    assert result["deletion"].shape == (8, 21) and result["fractions"][-1] == 1.0
    summary = faithfulness_report({name: result})["methods"][name]
    assert summary["deletion_auc"] < summary["random_deletion_auc"] - 0.1, summary
    assert summary["insertion_auc"] > summary["random_insertion_auc"] + 0.1, summary
    assert summary["deletion_beats_random"] == 1.0 and summary["insertion_beats_random"] == 1.0


def test_faithfulness_mechanics(blob_cnn, tmp_path):
    np.testing.assert_allclose(area_under_curve(np.full((2, 11), 0.3)), 0.3)
    np.testing.assert_allclose(area_under_curve(np.linspace(0, 1, 21)[None]), 0.5)
    # Ties are broken at random, not in raster order; the top pixel comes first.
    heatmap = np.zeros((1, 4, 4))
    heatmap[0, 3, 3] = 1.0
    ranks = saliency_ranks(heatmap, np.random.default_rng(0))
    assert ranks[0, 15] == 0 and sorted(ranks[0]) == list(range(16))
    # Chunked scoring, seeded orders: the same curves; both ends are the image and baseline.
    images, _ = blob_images(3, seed=60)
    maps = grad_cam(blob_cnn, images)
    a = deletion_insertion(blob_cnn, images, maps, steps=5, seed=3)
    b = deletion_insertion(blob_cnn, images, maps, steps=5, seed=3, max_batch=4)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6)
    p = blob_cnn.predict(images, verbose=0)[:, 0]
    np.testing.assert_allclose(a["deletion"][:, 0], p, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a["insertion"][:, -1], p, rtol=1e-4, atol=1e-6)
    json.dumps(faithfulness_report({"gradcam": a}, steps=5), allow_nan=False)
    plot_faithfulness({"gradcam": a}, tmp_path / "faithfulness.png")
    assert (tmp_path / "faithfulness.png").stat().st_size > 0


# --------------------------------------------------------------------------- (c) localization


@pytest.mark.parametrize("name,method", [("gradcam", grad_cam), ("integrated_gradients", IG)])
def test_pointing_game_and_iou_on_the_blob(name, method):
    images, masks = blob_images(6, seed=70)
    heatmaps = method(blob_model(SIZE), images)
    report = localization_report(heatmaps, masks)
    assert report["n_counted"] == 6
    assert report["pointing_game"] == 1.0, report
    assert report["mean_iou"] > 0.3, report
    assert report["mean_mass_inside"] > 0.3, report
    # The same maps moved half an image away point at nothing.
    wrong = np.roll(heatmaps, (SIZE // 2, SIZE // 2), axis=(1, 2))
    moved = localization_report(wrong, masks)
    assert moved["pointing_game"] == 0.0 and moved["mean_iou"] < 0.05, moved


def test_localization_details(tmp_path):
    masks = np.zeros((3, 10, 10), np.uint8)
    masks[0, 2:4, 2:4] = 1
    masks[1, 2:4, 2:4] = 1  # image 2: a normal, empty mask
    heatmaps = np.zeros((3, 10, 10))
    heatmaps[0, 3, 3] = 1.0  # on the lesion
    heatmaps[1, 3, 6] = 1.0  # 3 px to the right of it
    assert list(pointing_hits(heatmaps[:2], masks[:2], tolerance=0)) == [True, False]
    assert list(pointing_hits(heatmaps[:2], masks[:2], tolerance=3)) == [True, True]
    report = localization_report(heatmaps, masks, tolerance=0)
    assert report["n_counted"] == 2 and report["pointing_game"] == 0.5
    assert localization_report(heatmaps, masks, np.array([1, 0, 0]), tolerance=0)["n_counted"] == 1
    empty = localization_report(heatmaps[2:], masks[2:])
    assert empty["pointing_game"] is None and empty["n_counted"] == 0
    # Thresholds: a fraction of the max, or the top k % of pixels.
    ramp = np.arange(100, dtype=float).reshape(1, 10, 10)
    assert heatmap_regions(ramp, max_fraction=0.5).sum() == 50
    assert heatmap_regions(ramp, top_fraction=0.1).sum() == 10
    np.testing.assert_allclose(mask_iou(masks[:1].astype(float), masks[:1]), 1.0)
    # Mask files: 0/255 PNGs at another size, and "" for a normal image.
    big = np.zeros((40, 40), np.uint8)
    big[8:24, 16:32] = 255
    Image.fromarray(big).save(tmp_path / "mask.png")
    loaded = load_masks([str(tmp_path / "mask.png"), ""], 10)
    assert loaded.shape == (2, 10, 10) and loaded[0].sum() == 16 and loaded[1].sum() == 0
    assert loaded[0, 2:6, 4:8].all()


def test_plot_cascading_draws_each_method_from_the_trained_model_down(tmp_path, monkeypatch):
    """One line per method and panel (Spearman, SSIM), starting at 1 for the trained model;
    the [min, max] over draws shaded on the Spearman panel; a PNG and a TensorBoard image."""
    from components.reporting import figures

    steps = [
        {"layer": "prediction", "spearman": 0.2, "ssim": 0.1, "spearman_interval": [0.1, 0.3]},
        {"layer": "conv", "spearman": 0.0, "ssim": 0.05, "spearman_interval": [-0.1, 0.1]},
    ]
    drawn = []
    save_figure = figures.save_figure

    def look_then_save(fig, *args, **kwargs):
        drawn.append(
            [
                {
                    "lines": {line.get_label(): list(line.get_ydata()) for line in ax.lines[:2]},
                    "ticks": [tick.get_text() for tick in ax.get_xticklabels()],
                    "shaded": [c.get_paths()[0].vertices[:, 1].round(3) for c in ax.collections],
                }
                for ax in fig.axes
            ]
        )
        return save_figure(fig, *args, **kwargs)

    monkeypatch.setattr(figures, "save_figure", look_then_save)
    plain = dict(steps[0], layer="prediction", spearman=0.5)
    plain.pop("spearman_interval")
    plot_cascading(
        {"gradcam": steps, "ig": [plain]}, tmp_path / "cascading.png", tmp_path / "tensorboard"
    )
    (spearman, ssim) = drawn[0]
    assert spearman["lines"] == {"gradcam": [1.0, 0.2, 0.0], "ig": [1.0, 0.5]}
    assert ssim["lines"] == {"gradcam": [1.0, 0.1, 0.05], "ig": [1.0, 0.1]}
    assert spearman["ticks"] == ssim["ticks"] == ["trained", "prediction", "conv"]
    (band,) = spearman["shaded"]  # gradcam's draws only; ig has no interval
    assert {1.0, 0.1, 0.3, -0.1} <= set(band.tolist()) and not ssim["shaded"]
    with Image.open(tmp_path / "cascading.png") as png:
        assert png.format == "PNG" and min(png.size) > 100
    assert image_tags(tmp_path / "tensorboard") == {"./sanity/cascading_randomization"}


def test_localization_reports_chance_levels_and_the_tolerance_free_game():
    masks = np.zeros((2, 20, 20), np.uint8)
    masks[:, 5:9, 5:9] = 1  # 16 of 400 pixels: 4 % of the image
    heatmaps = np.zeros((2, 20, 20))
    heatmaps[0, 6, 6] = 1.0  # on the lesion
    heatmaps[1, 6, 11] = 1.0  # 3 px beside it
    report = localization_report(heatmaps, masks, tolerance=3.0)
    assert report["tolerance_px"] == 3.0
    assert report["pointing_game"] == 1.0 and report["pointing_game_no_tolerance"] == 0.5
    chance = report["chance"]
    assert chance["mask_area_fraction"] == pytest.approx(0.04)
    # Within 3 px of a 4 x 4 square: a 10 x 10 square less its four corners' arcs.
    assert 16 / 400 < chance["within_tolerance_fraction"] < 100 / 400
    random_map = chance["random_map"]
    assert random_map["pointing_game_no_tolerance"] == pytest.approx(0.04, abs=0.1)
    assert random_map["mean_mass_inside"] == pytest.approx(0.04, abs=0.01)
    assert random_map["pointing_game"] == pytest.approx(
        chance["within_tolerance_fraction"], abs=0.2
    )
    assert [row["hit_no_tolerance"] for row in report["per_image"]] == [True, False]
    json.dumps(report, allow_nan=False)


def test_pointing_game_and_mass_inside_equal_quantus(phantom_cnn):
    """The cross-check with an independent implementation (Quantus, Hedström et al.
    2023), on the same Grad-CAM and IG maps: our tolerance-free pointing game is its
    PointingGame, our mass inside its RelevanceMassAccuracy."""
    quantus = pytest.importorskip("quantus")
    model, images, labels, masks = phantom_cnn
    lesion = images[labels == 1][:16]
    lesion_masks = masks[labels == 1][:16]
    for method in (grad_cam, IG):
        maps = method(model, lesion)
        report = localization_report(maps, lesion_masks, tolerance=0.0)
        batch = dict(
            model=None,
            x_batch=np.moveaxis(lesion, -1, 1),
            y_batch=np.ones(len(lesion), int),
            a_batch=maps[:, None].astype("float64"),
            s_batch=lesion_masks[:, None].astype("float64"),
            channel_first=True,
        )
        theirs_hits = quantus.PointingGame(disable_warnings=True)(**batch)
        theirs_mass = quantus.RelevanceMassAccuracy(disable_warnings=True)(**batch)
        ours = report["per_image"]
        assert [row["hit"] for row in ours] == [bool(h) for h in theirs_hits]
        np.testing.assert_allclose(
            [row["mass_inside"] for row in ours], theirs_mass, rtol=0, atol=1e-8
        )
        assert report["pointing_game"] == report["pointing_game_no_tolerance"]


def test_sanity_verdict_rests_on_the_worst_of_several_draws(phantom_cnn):
    """One lucky draw must not pass a method: a 'method' whose map survives one of three
    randomization draws untouched has a mean Spearman under the bar, but fails."""
    model, images, _, _ = phantom_cnn
    calls = []

    def survives_the_third_draw(m, x):
        calls.append(len(calls))
        if len(calls) in (1, 4):  # the trained model's maps, and the third draw's
            return image_as_map(m, x)
        return np.random.default_rng(len(calls)).random(x.shape[:3])

    report = sanity_report(
        model,
        images[1:9:2],
        {"lucky": survives_the_third_draw},
        layer_names=randomizable_layers(model)[:1],
        draws=3,
    )
    summary = report["summary"]["lucky"]
    assert report["draws"] == 3 and len(calls) == 4
    low, high = summary["final_spearman_interval"]
    assert summary["final_spearman"] < report["pass_threshold_spearman"] < high
    assert high == pytest.approx(1.0) and low < 0.1
    assert summary["passes"] is False
    assert report["cascading"]["lucky"][0]["spearman_draws"][2] == pytest.approx(1.0)


def measured_ig_baselines() -> tuple[str, dict[str, dict[str, str]]]:
    """The README (or docs/) paragraph and table benchmarks/ig_baselines.py's figures were
    recorded in: (the paragraph's text, white space folded; {method: {column: cell}})."""
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
    for page in pages:
        lines = page.read_text(encoding="utf-8").splitlines()
        for at, line in enumerate(lines):
            if line.startswith("| method | pointing game | no tolerance | mass inside"):
                break
        else:
            continue
        paragraph: list[str] = []
        for before in reversed(lines[:at]):
            if not before.strip() and paragraph:
                break
            paragraph.insert(0, before)
        if "benchmarks/ig_baselines.py" not in " ".join(paragraph):
            continue
        header = [cell.strip() for cell in line.strip("|").split("|")]
        table = {}
        for row in lines[at + 2 :]:
            if not row.startswith("|"):
                break
            cells = [cell.strip() for cell in row.strip("|").split("|")]
            table[cells[0]] = dict(zip(header, cells))
        return " ".join(" ".join(paragraph).split()), table
    raise AssertionError("no page holds the table benchmarks/ig_baselines.py measured")


def test_the_sanity_defaults_are_the_settings_the_ig_baselines_were_measured_with():
    from components.pneumonia import explainer

    defaults = inspect.signature(explainer.run).parameters
    images, draws = defaults["sanity_images"].default, defaults["sanity_draws"].default
    paragraph, _ = measured_ig_baselines()
    assert f"randomization checks on {images} seeded test images over {draws} draws" in (
        paragraph
    ), paragraph


def test_the_default_ig_baseline_is_the_one_measured_best():
    """The default baseline's row of the measured table (benchmarks/ig_baselines.py on the
    default synthetic run) is first without tolerance and in mass inside among the IG
    rows, and passes both randomization checks."""
    from components.explain.integrated_gradients import BASELINES, DEFAULT_BASELINE
    from components.pneumonia import explainer

    assert inspect.signature(explainer.run).parameters["ig_baseline"].default == DEFAULT_BASELINE
    options = explainer.method_options(("integrated_gradients",), None, seed=0)
    assert options == {"integrated_gradients": {"baseline": DEFAULT_BASELINE}}
    _, table = measured_ig_baselines()
    rows = {b: row for name, row in table.items() for b in BASELINES if f"IG, {b}" in name}
    assert set(rows) == set(BASELINES), sorted(table)
    for column in ("no tolerance", "mass inside"):
        best = max(rows, key=lambda b: float(rows[b][column]))
        assert float(rows[DEFAULT_BASELINE][column]) == float(rows[best][column]), column
    assert rows[DEFAULT_BASELINE]["passes both"] == "yes"


def test_ig_baselines_give_different_maps_and_uniform_repeats_with_its_seed(phantom_cnn):
    """--ig_baseline: black, blur and noise-averaged uniform give different maps; uniform
    repeats with its seed and differs with another."""
    from components.explain.integrated_gradients import BASELINES

    model, images, _, _ = phantom_cnn
    lesion = images[1:5:2]
    maps = {b: integrated_gradients(model, lesion, baseline=b, steps=8) for b in BASELINES}
    assert set(maps) == {"black", "blur", "uniform"}
    for a, b in (("black", "blur"), ("black", "uniform"), ("blur", "uniform")):
        assert np.abs(maps[a] - maps[b]).max() > 0.05, (a, b)
    again = integrated_gradients(model, lesion, baseline="uniform", steps=8)
    np.testing.assert_allclose(again, maps["uniform"], atol=1e-6)
    other_seed = integrated_gradients(model, lesion, baseline="uniform", steps=8, seed=1)
    assert np.abs(other_seed - maps["uniform"]).max() > 1e-3
