"""The reference project's CNN, shared by every Keras anchor so they all measure one model.

Conv2D 32 3x3 relu - MaxPool 2 - Conv2D 64 3x3 relu - MaxPool 2 - Flatten - Dense 128 relu -
Dropout 0.5 - Dense N softmax (Menagerie's `menagerie:cnn` defaults build the same layers).
"""

import keras


def reference_cnn(size=64, classes=3):
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
