"""ImageNet backbones from keras.applications behind one grayscale, raw-pixel input.

The outer model is   image (s, s, channels) in [0, 255]
                  -> gray_to_rgb   (Concatenate of the channel three times; channels=1)
                  -> preprocess    (the backbone's own preprocess_input, as Keras layers)
                  -> backbone      (the include_top=False application, ONE nested layer)
                  -> gap -> dense (128, ReLU, L2) -> dropout 0.5 -> prediction.

No Lambda layers anywhere, so saved models load with safe_mode=True. Each backbone's
`preprocess_input` as layers (pixels x in [0, 255], replicated to three equal channels):

    densenet121     mode "torch": x/255, minus ImageNet mean, over ImageNet std, per RGB
                    channel -> Normalization(mean=255*mean, variance=(255*std)**2).
    vgg16           mode "caffe": RGB -> BGR, minus the BGR mean pixel, no scaling ->
                    Normalization(mean=[103.939, 116.779, 123.68], variance=1). With a
                    replicated gray channel the flip is a no-op; three-channel inputs get
                    a fixed, frozen 1x1 conv that swaps R and B.
    xception        mode "tf": x/127.5 - 1 -> Rescaling(1/127.5, offset=-1).
    efficientnetb0  preprocess_input is the identity: the application starts with its own
                    Rescaling(1/255) and Normalization, so raw pixels go straight in.

Weights: "none" -> random initialization; "imagenet" -> Keras' ImageNet weights (Keras
downloads them to ~/.keras/models, or finds them there offline); any other string is a
weights file handed to the application (`load_weights` by topology). For EfficientNetB0
prefer "imagenet" with the file placed in ~/.keras/models (efficientnetb0_notop.h5):
Keras adds one extra input Rescaling only when weights == "imagenet", so a path to the
ImageNet file gives slightly different input scaling than Keras' own ImageNet model.

Two-phase fine-tuning (keras-io "Transfer learning & fine-tuning"):

    model = build_transfer("densenet121", 224, weights="imagenet")  # backbone frozen
    model.compile(keras.optimizers.Adam(1e-3), loss, metrics)       # phase 1: the head
    model.fit(train, validation_data=val, epochs=...)
    fine_tune_layers(model, 30)                                     # phase 2: top 30
    model.compile(keras.optimizers.Adam(1e-5), loss, metrics)       # recompile, low LR
    model.fit(train, validation_data=val, epochs=...)

With pretrained weights the backbone starts frozen (phase 1). Its BatchNormalization
layers stay frozen in phase 2 too, and a frozen BatchNormalization runs in inference mode
in Keras 3, so the ImageNet statistics are not wrecked by small chest X-ray batches. With
weights="none" nothing is frozen: the whole network trains from scratch, its batch norms
included.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from models.cnn import output_layer

APPLICATIONS = {
    "densenet121": keras.applications.DenseNet121,  # CheXNet (Rajpurkar et al., 2017)
    "vgg16": keras.applications.VGG16,
    "xception": keras.applications.Xception,
    "efficientnetb0": keras.applications.EfficientNetB0,
}
MIN_IMAGE_SIZE = {"densenet121": 32, "vgg16": 32, "xception": 71, "efficientnetb0": 32}
IMAGENET_MEAN_RGB = np.array([0.485, 0.456, 0.406])
IMAGENET_STD_RGB = np.array([0.229, 0.224, 0.225])
CAFFE_MEAN_BGR = [103.939, 116.779, 123.68]


def backbone_weights(weights: str) -> str | None:
    """The application's `weights` argument for our --weights value."""
    if weights == "none":
        return None
    return weights  # "imagenet" or a path to a weights file


def to_three_channels(x: keras.KerasTensor, channels: int, name: str) -> keras.KerasTensor:
    """Gray -> three equal channels; RGB -> BGR for Caffe-style (VGG) backbones."""
    if channels == 1:
        return layers.Concatenate(axis=-1, name="gray_to_rgb")([x, x, x])
    if channels != 3:
        raise ValueError(f"{name} takes 1 (grayscale) or 3 (RGB) channels, not {channels}")
    if name == "vgg16":
        swap = np.zeros((1, 1, 3, 3), dtype="float32")
        swap[0, 0, [2, 1, 0], [0, 1, 2]] = 1.0  # output channel j reads input channel 2 - j
        conv = layers.Conv2D(
            3,
            1,
            use_bias=False,
            trainable=False,
            name="rgb_to_bgr",
            kernel_initializer=keras.initializers.Constant(swap),
        )
        return conv(x)
    return x


def preprocess(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """The backbone's own `preprocess_input` as serializable layers (see module doc)."""
    if name == "densenet121":
        return layers.Normalization(
            mean=(255.0 * IMAGENET_MEAN_RGB).tolist(),
            variance=((255.0 * IMAGENET_STD_RGB) ** 2).tolist(),
            name="preprocess",
        )(x)
    if name == "vgg16":
        return layers.Normalization(
            mean=CAFFE_MEAN_BGR, variance=[1.0, 1.0, 1.0], name="preprocess"
        )(x)
    if name == "xception":
        return layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(x)
    return x  # efficientnetb0 rescales and normalizes inside the application


def build_transfer(
    name: str,
    image_size: int,
    channels: int = 1,
    num_classes: int = 2,
    weights: str = "none",
    dense_units: int = 128,
    dropout: float = 0.5,
    l2: float = 1e-4,
    multilabel: bool = False,
) -> keras.Model:
    """Input: (image_size, image_size, channels) raw pixels in [0, 255]; `multilabel`:
    one sigmoid per class (models.cnn.output_layer).

    `name`: densenet121, vgg16, xception or efficientnetb0. The backbone is frozen when
    `weights` is pretrained ("imagenet" or a file), trainable when it is "none".
    """
    if name not in APPLICATIONS:
        raise ValueError(f"unknown transfer model {name!r}; choose from {', '.join(APPLICATIONS)}")
    if image_size < MIN_IMAGE_SIZE[name]:
        raise ValueError(
            f"{name} needs images of at least {MIN_IMAGE_SIZE[name]}x"
            f"{MIN_IMAGE_SIZE[name]} px; got --image_size {image_size}"
        )
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = to_three_channels(inputs, channels, name)
    x = preprocess(x, name)
    base = APPLICATIONS[name](
        include_top=False,
        weights=backbone_weights(weights),
        input_shape=(image_size, image_size, 3),
    )
    base.trainable = weights == "none"
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(
        dense_units,
        activation="relu",
        name="dense",
        kernel_regularizer=keras.regularizers.L2(l2) if l2 else None,
    )(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = output_layer(num_classes, multilabel)(x)
    return keras.Model(inputs, outputs, name=name)


def backbone(model: keras.Model) -> keras.Model:
    """The nested application inside a `build_transfer` model."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"model {model.name} has {len(nested)} nested backbones, expected 1")
    return nested[0]


def fine_tune_layers(model: keras.Model, trainable_top_n: int) -> keras.Model:
    """Freeze the backbone except its top `trainable_top_n` non-BatchNormalization layers.

    0 is phase 1 (whole backbone frozen, only the head trains); N > 0 is phase 2: the last
    N layers of the backbone that are not BatchNormalization (nor its input) become
    trainable, every BatchNormalization stays frozen (and so in inference mode). The
    head is left as it is. Recompile the model afterwards (with a low learning rate):
    Keras reads `trainable` when it compiles the train step.
    """
    if trainable_top_n < 0:
        raise ValueError(f"trainable_top_n must be >= 0; got {trainable_top_n}")
    base = backbone(model)
    base.trainable = trainable_top_n > 0
    candidates = [
        layer
        for layer in base.layers
        if not isinstance(layer, (layers.InputLayer, layers.BatchNormalization))
    ]
    top = {id(layer) for layer in (candidates[-trainable_top_n:] if trainable_top_n else [])}
    for layer in base.layers:
        layer.trainable = id(layer) in top
    return model
