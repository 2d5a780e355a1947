"""The CNN-LSTM hybrid from the pneumonia literature: conv features read row by row by LSTMs.

Three conv blocks extract a feature map; its rows become a sequence (at 128 px: 16 rows
of 16 x 128 = 2048 features) that two stacked LSTMs summarize, then a dense head
classifies. Every Conv2D/Dense keeps its bias and every conv, LSTM and dense layer is
followed by batch normalization; that is the arrangement whose size matches the
published one exactly (128x128x1, binary):

    layer                          parameters                        non-trainable
    block1 Conv2D 3x3, 1->32       3*3*1*32 + 32       =     320
    block1 BatchNorm (32)          4*32                =     128      2*32  =  64
    block2 Conv2D 3x3, 32->64      3*3*32*64 + 64      =  18,496
    block2 BatchNorm (64)          4*64                =     256      2*64  = 128
    block3 Conv2D 3x3, 64->128     3*3*64*128 + 128    =  73,856
    block3 BatchNorm (128)         4*128               =     512      2*128 = 256
    reshape (16, 16, 128) -> (16, 2048)                        0
    LSTM 256                       4*256*(2048+256+1)  = 2,360,320
    BatchNorm (256)                4*256               =   1,024      2*256 = 512
    LSTM 128                       4*128*(256+128+1)   =  197,120
    BatchNorm (128)                4*128               =     512      2*128 = 256
    Dense 256                      128*256 + 256       =  33,024
    BatchNorm (256)                4*256               =   1,024      2*256 = 512
    Dense 128                      256*128 + 128       =  32,896
    BatchNorm (128)                4*128               =     512      2*128 = 256
    Dense 1 (sigmoid)              128 + 1             =     129
    total                                              = 2,720,129    1,984

(A BatchNorm over c channels holds gamma, beta, moving mean and moving variance: 4c
parameters, of which the 2c moving statistics are non-trainable.) Dropping the biases
of the convs/denses that precede a BatchNorm would remove 32+64+128+256+128 = 608
parameters, so the published count implies they were kept.

For other image sizes the sequence follows the feature map: an s-pixel input gives
s // 8 rows of (s // 8) * 128 features, so the first LSTM's size changes with s.
"""

from __future__ import annotations

import keras
from keras import layers

from models.cnn import output_layer

DEFAULT_FILTERS = (32, 64, 128)  # one conv block and 2x2 pooling each


def build_cnn_lstm(
    image_size: int = 128,
    channels: int = 1,
    num_classes: int = 2,
    filters: tuple[int, ...] = DEFAULT_FILTERS,
    conv_dropout: tuple[float, ...] = (0.2, 0.3, 0.4),
    lstm_units: tuple[int, ...] = (256, 128),
    lstm_dropout: float = 0.4,
    dense_units: tuple[int, ...] = (256, 128),
    dense_dropout: float = 0.5,
    multilabel: bool = False,
) -> keras.Model:
    """Input: (image_size, image_size, channels) raw pixels in [0, 255]; `multilabel`:
    one sigmoid per class (models.cnn.output_layer)."""
    if len(filters) != len(conv_dropout):
        raise ValueError("filters and conv_dropout need one entry per conv block")
    if image_size < 2 ** len(filters):
        raise ValueError(
            f"cnn_lstm needs images of at least {2 ** len(filters)} px for "
            f"{len(filters)} poolings; got {image_size}"
        )
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for index, (width, rate) in enumerate(zip(filters, conv_dropout), start=1):
        x = layers.Conv2D(width, 3, padding="same", name=f"block{index}_conv")(x)
        x = layers.BatchNormalization(name=f"block{index}_bn")(x)
        x = layers.ReLU(name=f"block{index}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{index}_pool")(x)
        x = layers.Dropout(rate, name=f"block{index}_dropout")(x)
    rows, cols, depth = x.shape[1:]
    # Rows are the time steps; each step sees one whole row of feature vectors.
    x = layers.Reshape((rows, cols * depth), name="rows_to_sequence")(x)
    for index, units in enumerate(lstm_units, start=1):
        last = index == len(lstm_units)
        x = layers.LSTM(units, return_sequences=not last, name=f"lstm{index}")(x)
        x = layers.BatchNormalization(name=f"lstm{index}_bn")(x)
        x = layers.Dropout(lstm_dropout, name=f"lstm{index}_dropout")(x)
    for index, units in enumerate(dense_units, start=1):
        x = layers.Dense(units, name=f"dense{index}")(x)
        x = layers.BatchNormalization(name=f"dense{index}_bn")(x)
        x = layers.ReLU(name=f"dense{index}_relu")(x)
        x = layers.Dropout(dense_dropout, name=f"dense{index}_dropout")(x)
    outputs = output_layer(num_classes, multilabel)(x)
    return keras.Model(inputs, outputs, name="cnn_lstm")
