"""Anchors: end-to-end epochs of a Keras training pipeline on JPEGs on disk.

Both read the image paths from SQLite (Menagerie's own catalogue, whose rows were ingested by
reference, so `uri` is a file:// path to the same JPEGs Menagerie reads), train the
reference CNN (Adam 1e-3, batch 32) and validate on the val split (rescaled only) at the end
of each epoch, as Menagerie's trainer does.

--pipeline tfdata (the default; what a careful Keras user writes today): `tf.data` from the
  paths, `read_file` + `decode_jpeg` at the reference CNN's 'tensorflow' decoder's scale
  (`ratio`, 1/8 for 512 -> 64, straight to 64x64, see sharp_scale.py; a bilinear resize
  when that scale does not give the size), parallel map, `.cache()` after decode/resize so
  later epochs decode nothing, `.shuffle()` over the
  whole split each epoch, `.batch()`, Keras augmentation layers on each batch (RandomFlip,
  RandomRotation 10 deg, RandomZoom 0.1, RandomTranslation 0.1, RandomBrightness 0.2, edges
  'nearest': the ranges of Menagerie's DEFAULT_AUGMENT), rescale, `.prefetch(AUTOTUNE)`.
--pipeline generator (the reference project's): `ImageDataGenerator(...).flow_from_dataframe`
  decodes (full scale), resizes and augments every image every epoch. Keras 3 dropped
  ImageDataGenerator from `keras.preprocessing.image` but still ships it as
  `keras.src.legacy.preprocessing.image.ImageDataGenerator`, exported to reference-style code
  as `tensorflow.keras.preprocessing.image.ImageDataGenerator`; that is the import used here.

With --paced, each epoch waits for a line on stdin and reports {"epoch", "seconds", ...}
on stdout when done, so the caller can interleave its own epochs with these.

Usage: python epoch_e2e.py <menagerie.db> <epochs> [size] [batch] [--pipeline P] [--paced]
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
from sharp_scale import tensorflow_dct_scale  # noqa: E402


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


def generator_datasets(train_df, val_df, size, batch):
    """The reference project's: ImageDataGenerator + flow_from_dataframe, every epoch decoded."""
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
    return train, val, len(train.class_indices)


def tfdata_datasets(train_df, val_df, size, batch):
    """tf.data: decode once at the decoder's scale, cache, shuffle, augment per batch, prefetch."""
    classes = sorted(set(train_df["label"]) | set(val_df["label"]))
    # One scale for the split, from the first image's size (every image here is 512x512).
    with open(train_df["path"].iloc[0], "rb") as f:
        shape = tf.io.extract_jpeg_shape(f.read()).numpy()
    ratio = tensorflow_dct_scale(int(shape[1]), int(shape[0]), size)
    # As the 'tensorflow' decoder: no resize when libjpeg's scale gives the size already.
    resize = -(-int(min(shape[0], shape[1])) // ratio) != size or shape[0] != shape[1]
    autotune = tf.data.AUTOTUNE

    def load(path, label):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3, ratio=ratio)
        if resize:  # bilinear, half-pixel centres, rounded: the 'tensorflow' decoder's
            image = tf.round(tf.image.resize(image, (size, size), method="bilinear"))
        # decode_jpeg's shape is unknown to the graph; a known one keeps Keras from retracing.
        image = tf.ensure_shape(tf.cast(image, tf.float32), (size, size, 3))
        return tf.clip_by_value(image, 0.0, 255.0), tf.one_hot(label, len(classes))

    def source(df):
        labels = [classes.index(label) for label in df["label"]]
        ds = tf.data.Dataset.from_tensor_slices((list(df["path"]), labels))
        return ds.map(load, num_parallel_calls=autotune).cache()

    augment = keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomRotation(10 / 360, fill_mode="nearest"),
            keras.layers.RandomZoom(0.1, fill_mode="nearest"),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest"),
            keras.layers.RandomBrightness(0.2, value_range=(0, 255)),
        ]
    )
    rescale = keras.layers.Rescaling(1.0 / 255)
    train = (
        source(train_df)
        .shuffle(len(train_df), seed=0, reshuffle_each_iteration=True)
        .batch(batch)
        .map(lambda x, y: (rescale(augment(x, training=True)), y), num_parallel_calls=autotune)
        .prefetch(autotune)
    )
    val = source(val_df).batch(batch).map(lambda x, y: (rescale(x), y)).prefetch(autotune)
    return train, val, len(classes)


def main(argv):
    paced = "--paced" in argv
    argv = [a for a in argv if a != "--paced"]
    pipeline = "tfdata"
    if "--pipeline" in argv:
        at = argv.index("--pipeline")
        pipeline = argv[at + 1]
        del argv[at : at + 2]
    db_path, epochs = argv[1], int(argv[2])
    size = int(argv[3]) if len(argv) > 3 else 64
    batch = int(argv[4]) if len(argv) > 4 else 32
    train_df, val_df = frame(db_path, "train"), frame(db_path, "val")

    keras.utils.set_random_seed(0)
    builders = {"tfdata": tfdata_datasets, "generator": generator_datasets}
    if pipeline not in builders:
        raise SystemExit(f"unknown --pipeline {pipeline}; expected one of {sorted(builders)}")
    train, val, classes = builders[pipeline](train_df, val_df, size, batch)

    model = reference_cnn(size, classes)
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
                "pipeline": pipeline,
                "epoch_seconds": [round(s, 4) for s in timer.seconds],
                "train_seconds": [round(s, 4) for s in timer.train_seconds],
                "val_accuracy": [float(v) for v in history.history.get("val_accuracy", [])],
                "train_images": len(train_df),
                "val_images": len(val_df),
                "tf": tf.__version__,
                "keras": keras.__version__,
                "jit_compile": bool(model.jit_compile),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
