"""Anchor: end-to-end epochs of the reference project's Keras pipeline on JPEGs on disk.

Written the reference way: image paths come from SQLite (Menagerie's own catalogue, whose
rows were ingested by reference, so `uri` is a file:// path to the same JPEGs Menagerie
reads) into a pandas dataframe; `ImageDataGenerator(...).flow_from_dataframe` decodes,
resizes to 64x64 and augments every image every epoch; `model.fit` trains the reference
CNN (Adam 1e-3) and validates on the val split (rescaled only) at the end of each epoch.

Keras 3 dropped ImageDataGenerator from `keras.preprocessing.image`, but still ships it as
`keras.src.legacy.preprocessing.image.ImageDataGenerator`, exported to reference-style code
as `tensorflow.keras.preprocessing.image.ImageDataGenerator`; that is the import used here.

With --paced, each epoch waits for a line on stdin and reports {"epoch", "seconds", ...}
on stdout when done, so the caller can interleave its own epochs with these.

Usage: python epoch_e2e.py <menagerie.db> <epochs> [size] [batch] [--paced]
Last stdout line: {"epoch_seconds": [...], "train_seconds": [...], "tf": "2.21.0", ...}
"""

import json
import os
import sqlite3
import sys
import time
from urllib.parse import unquote, urlparse

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.keras.preprocessing.image import ImageDataGenerator  # noqa: E402
from reference_cnn import reference_cnn  # noqa: E402


def frame(db_path, split):
    """The split's images as a dataframe of (path, label), the way the reference read them."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as con:
        rows = con.execute(
            "SELECT images.uri, labels.name FROM images JOIN labels ON labels.id = images.label_id "
            "WHERE images.split = ? ORDER BY images.id",
            (split,),
        ).fetchall()
    if not rows or not all(uri.startswith("file://") for uri, _ in rows):
        raise SystemExit(f"{db_path}: no {split} images ingested by reference (file:// URIs)")
    paths = [unquote(urlparse(uri).path) for uri, _ in rows]
    return pd.DataFrame({"path": paths, "label": [label for _, label in rows]})


class EpochTimer(keras.callbacks.Callback):
    def __init__(self, paced):
        super().__init__()
        self.paced = paced
        self.seconds = []
        self.train_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        if self.paced and not sys.stdin.readline():
            raise SystemExit("stdin closed before the last epoch")
        self.started = time.perf_counter()
        self.train_done = None

    def on_test_begin(self, logs=None):
        self.train_done = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.seconds.append(now - self.started)
        self.train_seconds.append((self.train_done or now) - self.started)
        if self.paced:
            report = {
                "epoch": epoch,
                "seconds": self.seconds[-1],
                "train_seconds": self.train_seconds[-1],
                "val_accuracy": float((logs or {}).get("val_accuracy", float("nan"))),
            }
            print(json.dumps(report), flush=True)


def main(argv):
    paced = "--paced" in argv
    argv = [a for a in argv if a != "--paced"]
    db_path, epochs = argv[1], int(argv[2])
    size = int(argv[3]) if len(argv) > 3 else 64
    batch = int(argv[4]) if len(argv) > 4 else 32
    train_df, val_df = frame(db_path, "train"), frame(db_path, "val")

    keras.utils.set_random_seed(0)
    train_gen = ImageDataGenerator(
        rescale=1.0 / 255,
        horizontal_flip=True,
        rotation_range=10,
        zoom_range=0.1,
        width_shift_range=0.1,
        height_shift_range=0.1,
        brightness_range=(0.8, 1.2),
        fill_mode="nearest",
    )
    common = dict(
        x_col="path",
        y_col="label",
        target_size=(size, size),
        batch_size=batch,
        class_mode="categorical",
    )
    train = train_gen.flow_from_dataframe(train_df, shuffle=True, seed=0, **common)
    val = ImageDataGenerator(rescale=1.0 / 255).flow_from_dataframe(
        val_df, shuffle=False, **common
    )

    model = reference_cnn(size, len(train.class_indices))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    timer = EpochTimer(paced)
    if paced:
        print(json.dumps({"ready": True, "train": len(train_df), "val": len(val_df)}), flush=True)
    history = model.fit(train, validation_data=val, epochs=epochs, verbose=0, callbacks=[timer])
    print(
        json.dumps(
            {
                "epoch_seconds": [round(s, 4) for s in timer.seconds],
                "train_seconds": [round(s, 4) for s in timer.train_seconds],
                "val_accuracy": [float(v) for v in history.history.get("val_accuracy", [])],
                "train_images": len(train_df),
                "val_images": len(val_df),
                "tf": tf.__version__,
                "keras": keras.__version__,
                "jit_compile": bool(model.jit_compile),
                "generator": f"{ImageDataGenerator.__module__}.ImageDataGenerator",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
