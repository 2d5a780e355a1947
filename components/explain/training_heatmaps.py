"""Per-epoch heatmaps of fixed validation images in TensorBoard, from tf-explain's callbacks.

tf-explain's GradCAMCallback and IntegratedGradientsCallback explain the same few
validation images at the end of every epoch and write the pictures as TF2 image
summaries (`tf.summary.image`), so TensorBoard's Images tab shows attention forming as
the model learns. `heatmap_callbacks` configures both for our models (one sigmoid unit,
class_index=0; one grayscale channel of raw pixels in [0, 255]) and writes below
`<tensorboard_dir>/heatmaps/{grad_cam,integrated_gradients}/<tf-explain's timestamp>/`.

tf-explain 0.3.1 targets Keras 2; the subclasses below keep its explainers and change
only what goes wrong with Keras 3 or with our inputs (each reason is at the override).

`compare_with_tf_explain` cross-checks our batched Grad-CAM (components/explain/gradcam.py)
against tf-explain's on the same model, layer and images. The two differ in what they
differentiate (we take the sigmoid's logit, tf-explain the probability: for one image the
two gradients differ by the positive factor p(1 - p), which normalization removes) and,
by default, in the channel weights (tf-explain's "guided" weights keep only positive
gradients at positive activations). With use_guided_grads=False they are the same
Grad-CAM, and the maps agree (tests/test_training_heatmaps.py).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from tf_explain.callbacks.grad_cam import GradCAMCallback
from tf_explain.callbacks.integrated_gradients import IntegratedGradientsCallback
from tf_explain.core.grad_cam import GradCAM
from tf_explain.core.integrated_gradients import IntegratedGradients
from tf_explain.utils.display import grid_display

from components.explain.gradcam import grad_cam, last_conv_layer
from models.training import float32_copy

HEATMAPS_SUBDIR = "heatmaps"
GRAD_CAM_TAG = "Grad CAM"  # tf-explain's summary tags
INTEGRATED_GRADIENTS_TAG = "IntegratedGradients"
# tf-explain builds its gradient model as Model([model.inputs], ...): one list too many,
# which Keras 3 accepts with this warning on every call.
NESTED_INPUTS_WARNING = "The structure of `inputs` doesn't match the expected structure"


def last_conv_layer_name(model: keras.Model) -> str:
    """Name of the layer Grad-CAM explains by default (components.explain.gradcam.last_conv_layer)."""
    return last_conv_layer(model).name


def display_pixels(images: np.ndarray) -> np.ndarray:
    """Raw float pixels in [0, 255] -> uint8, exact for input_fn's images (integer valued).

    tf-explain's overlay (utils.display.image_to_uint_255) reads float images as [0, 1]
    or [-1, 1] and multiplies by 255, so float pixels in [0, 255] wrap around in the uint8
    cast and the radiograph under the heatmap becomes noise; uint8 images are used as
    they are. The explainers cast images to float32 before the model, so the model still
    sees the same raw pixels.
    """
    return np.clip(np.rint(np.asarray(images, dtype=np.float32)), 0, 255).astype(np.uint8)


class GradCAMHeatmaps(GradCAMCallback):
    """tf-explain's GradCAMCallback, made to work with Keras 3 and our grayscale pixels.

    - The layer is resolved when training begins: tf-explain's own default
      (GradCAM.infer_grad_cam_target_layer) reads `layer.output_shape`, which Keras 3
      layers no longer have (AttributeError).
    - Images are stored as uint8 for tf-explain's overlay (see `display_pixels`).
    - The event file is flushed every epoch: tf-explain never flushes or closes its
      writer, so during a long run the images reach TensorBoard only when the writer's
      own queue or timer (up to 2 minutes) flushes, or when the callback is collected.
    - A nested backbone (keras.applications inside models/transfer.py) cannot be
      explained by tf-explain: Model(model.inputs, backbone.output) is "not connected"
      in Keras 3. Grad-CAM heatmaps are then skipped with a warning (our own grad_cam
      splits the model instead; the Explainer still shows them after training).
    """

    def __init__(
        self,
        validation_data,
        class_index: int = 0,
        layer_name: str | None = None,
        output_dir: Path = Path("logs/grad_cam"),
        use_guided_grads: bool = False,
    ):
        images, labels = validation_data
        super().__init__(
            (display_pixels(images), labels),
            class_index,
            layer_name=layer_name,
            output_dir=Path(output_dir),
            use_guided_grads=use_guided_grads,
        )
        self.skipped = False

    def on_train_begin(self, logs=None):
        """Resolves the explained layer (the given name or the last conv layer) and skips the
        callback, with a warning, when that layer is a nested model."""
        layer = (
            self.model.get_layer(self.layer_name)
            if self.layer_name
            else last_conv_layer(self.model)
        )
        self.layer_name = layer.name
        self.skipped = isinstance(layer, keras.Model)
        if self.skipped:
            logging.warning(
                "training heatmaps: %s is a nested model, which tf-explain's "
                "Grad-CAM cannot reach under Keras 3; Grad-CAM heatmaps skipped",
                layer.name,
            )

    def on_epoch_end(self, epoch, logs=None):
        """Logs this epoch's Grad-CAM grid to TensorBoard, computed on a float32 copy of the model
        (OpenCV refuses half-precision maps)."""
        if self.skipped:
            return
        # tf-explain explains self.model; under a mixed policy its maps are bfloat16 or
        # float16, which OpenCV's resize refuses: explain this epoch's weights in float32.
        trained = self.model
        self.set_model(float32_copy(trained))
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=NESTED_INPUTS_WARNING)
                super().on_epoch_end(epoch, logs)
        finally:
            self.set_model(trained)
        self.file_writer.flush()

    def on_train_end(self, logs=None):
        """Flushes the TensorBoard writer, so the last epoch's grid is on disk."""
        self.file_writer.flush()


class IntegratedGradientsHeatmaps(IntegratedGradientsCallback):
    """tf-explain's IntegratedGradientsCallback with a display that survives the uint8 cast.

    The attributions are tf-explain's (core.IntegratedGradients: a straight path from a
    black baseline, gradients of predictions[:, class_index] averaged over `n_steps`
    points). Its display, utils.image.transform_to_normalized_grayscale, standardizes the
    whole batch as one image and casts 255 * z-scores to uint8: negative scores (about
    half the pixels) and scores above 1 wrap around, so the picture is mostly noise.
    Here each image's |attribution| is scaled by its 99th percentile and clipped to
    [0, 1] before tf-explain's grid_display.

    multiply_by_input: tf-explain 0.3.1 returns the path-averaged gradients without the
    (input - baseline) factor of Sundararajan et al. (2017); True applies it, giving the
    paper's integrated gradients; False logs tf-explain's quantity unchanged.
    Explained one image at a time (a batch of n_steps) to bound memory.
    """

    def __init__(
        self,
        validation_data,
        class_index: int = 0,
        n_steps: int = 16,
        output_dir: Path = Path("logs/integrated_gradients"),
        multiply_by_input: bool = True,
    ):
        images, labels = validation_data
        super().__init__(
            (np.asarray(images, dtype=np.float32), labels),
            class_index,
            n_steps=n_steps,
            output_dir=Path(output_dir),
        )
        self.multiply_by_input = multiply_by_input

    def attributions(self) -> np.ndarray:
        """(n, h, w) |integrated gradients| summed over channels, each image in [0, 1]."""
        images, _ = self.validation_data
        model = float32_copy(self.model)  # gradients in float32 under a mixed policy
        maps = []
        for image in images:
            path = IntegratedGradients.generate_interpolations(image[np.newaxis], self.n_steps)
            gradients = IntegratedGradients.get_integrated_gradients(
                path.astype(np.float32), model, self.class_index, self.n_steps
            )
            attribution = gradients.numpy()[0]
            if self.multiply_by_input:
                attribution = attribution * image  # baseline: zeros (tf-explain's)
            maps.append(np.abs(attribution).sum(axis=-1))
        maps = np.stack(maps)
        scale = np.percentile(maps, 99, axis=(1, 2), keepdims=True)
        return np.clip(maps / np.maximum(scale, 1e-12), 0.0, 1.0)

    def on_epoch_end(self, epoch, logs=None):
        """Logs this epoch's integrated-gradients grid to TensorBoard."""
        grid = grid_display(self.attributions()[..., np.newaxis].astype(np.float32))
        with self.file_writer.as_default():
            tf.summary.image(INTEGRATED_GRADIENTS_TAG, grid[np.newaxis], step=epoch)
        self.file_writer.flush()

    def on_train_end(self, logs=None):
        """Flushes the TensorBoard writer, so the last epoch's grid is on disk."""
        self.file_writer.flush()


def heatmap_callbacks(
    validation_images: np.ndarray,
    validation_labels,
    tensorboard_dir: Path,
    layer_name: str | None = None,
    *,
    max_images: int = 8,
    use_guided_grads: bool = False,
    ig_steps: int = 16,
) -> list[keras.callbacks.Callback]:
    """tf-explain's Grad-CAM and Integrated Gradients callbacks on fixed validation images.

    validation_images: (n, h, w, channels) raw pixels in [0, 255]; the first `max_images`
    are explained after every epoch. layer_name: the Grad-CAM layer, by default the last
    4-D feature map (components.explain.gradcam.last_conv_layer), resolved when training begins.
    use_guided_grads=False gives the Grad-CAM of components/explain/gradcam.py (tf-explain's
    default is True). Summaries go to <tensorboard_dir>/heatmaps/grad_cam/<timestamp>/
    (tag "Grad CAM") and .../integrated_gradients/<timestamp>/ (tag "IntegratedGradients"),
    one step per epoch (the epoch index).
    """
    images = np.asarray(validation_images)[:max_images]
    labels = None if validation_labels is None else np.asarray(validation_labels)[:max_images]
    root = Path(tensorboard_dir) / HEATMAPS_SUBDIR
    return [
        GradCAMHeatmaps(
            (images, labels),
            class_index=0,
            layer_name=layer_name,
            output_dir=root / "grad_cam",
            use_guided_grads=use_guided_grads,
        ),
        IntegratedGradientsHeatmaps(
            (images, labels),
            class_index=0,
            n_steps=ig_steps,
            output_dir=root / "integrated_gradients",
        ),
    ]


def tf_explain_cams(
    model: keras.Model,
    images: np.ndarray,
    layer_name: str | None = None,
    class_index: int = 0,
    use_guided_grads: bool = False,
) -> np.ndarray:
    """tf-explain's raw Grad-CAM maps, post-processed as components.explain.gradcam does.

    GradCAM.get_gradients_and_filters and generate_ponderated_output give the cams
    before tf-explain colors them; then ReLU (the Grad-CAM paper's; tf-explain min-max
    scales instead), bilinear resize to the input size, and division by each map's peak.
    """
    layer_name = layer_name or last_conv_layer_name(model)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=NESTED_INPUTS_WARNING)
        outputs, gradients = GradCAM.get_gradients_and_filters(
            model, np.asarray(images, dtype=np.float32), layer_name, class_index, use_guided_grads
        )
    cams = tf.stack(GradCAM.generate_ponderated_output(outputs, gradients))[..., tf.newaxis]
    cams = tf.image.resize(tf.nn.relu(cams), np.shape(images)[1:3], method="bilinear")[..., 0]
    peak = tf.reduce_max(cams, axis=(1, 2), keepdims=True)
    return (cams / tf.maximum(peak, 1e-12)).numpy()


def pearson_per_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each pair of maps; 1 if both are constant, 0 if only one is."""
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm_a, norm_b = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    flat_a, flat_b = norm_a < 1e-12, norm_b < 1e-12
    r = (a * b).sum(axis=1) / np.maximum(norm_a * norm_b, 1e-300)
    return np.where(flat_a & flat_b, 1.0, np.where(flat_a | flat_b, 0.0, r))


def compare_with_tf_explain(
    model: keras.Model,
    images: np.ndarray,
    layer_name: str | None = None,
    *,
    use_guided_grads: bool = False,
    class_index: int = 0,
) -> float:
    """Mean Pearson r between our grad_cam maps and tf-explain's, same model/layer/images."""
    layer_name = layer_name or last_conv_layer_name(model)
    ours = grad_cam(model, images, layer_name=layer_name, class_index=class_index)
    theirs = tf_explain_cams(model, images, layer_name, class_index, use_guided_grads)
    return float(pearson_per_image(ours, theirs).mean())


__all__ = [
    "GradCAMHeatmaps",
    "IntegratedGradientsHeatmaps",
    "compare_with_tf_explain",
    "display_pixels",
    "heatmap_callbacks",
    "last_conv_layer_name",
    "pearson_per_image",
    "tf_explain_cams",
]
