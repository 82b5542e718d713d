"""Anchor for `npm run bench -- transfer`: transfer learning on a MobileNetV2 x1.4 base in
Keras 3, on the same JPEG files as Menagerie (paths and labels from its SQLite catalogue).

Two ways, both with `keras.applications.MobileNetV2(alpha=1.4, include_top=False,
pooling='avg', weights=None)` (the same compute as the ImageNet weights, which cannot be
downloaded here):
  frozen-fit  the base frozen inside the model, `model.fit` on a tf.data pipeline, as most
              tutorials do: every epoch runs the base on every image again;
  precompute  features once with `base.predict`, then the head fitted on them, as a careful
              engineer does.
The pipeline reads with tf.io.read_file and decodes with decode_jpeg at ratio 2 (the same
reduced DCT scale sharp uses for 512 -> 224) before resizing to 224, scales to [0, 1], and
batches 32 with prefetch. The head is Dropout 0.2 + Dense softmax, Adam 3e-3, as the
transfer plugin's defaults. Prints one JSON line: seconds (from the first read to the last
epoch's end), feature_seconds, val_accuracy.

usage: transfer.py CATALOGUE.db EPOCHS MODE
"""
import json
import sqlite3
import sys
import time

import keras
import tensorflow as tf

db, epochs, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = sqlite3.connect(db).execute(
    "SELECT i.uri, l.name, i.split FROM images i JOIN labels l ON l.id = i.label_id ORDER BY i.id"
).fetchall()
labels = sorted({r[1] for r in rows})
index = {name: i for i, name in enumerate(labels)}


def split(name):
    items = [(uri.removeprefix("file://"), index[label]) for uri, label, s in rows if s == name]
    return [p for p, _ in items], [y for _, y in items]


def pipeline(paths, ys, shuffle):
    def load(path, y):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3, ratio=2)
        return tf.image.resize(image, (224, 224)) / 255.0, y

    ds = tf.data.Dataset.from_tensor_slices((paths, ys))
    if shuffle:
        ds = ds.shuffle(len(paths), seed=1)
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(32).prefetch(tf.data.AUTOTUNE)


train_paths, train_ys = split("train")
val_paths, val_ys = split("val")
keras.utils.set_random_seed(1)
base = keras.applications.MobileNetV2(
    alpha=1.4, include_top=False, pooling="avg", weights=None, input_shape=(224, 224, 3)
)
base.trainable = False


def head(inputs, features):
    x = keras.layers.Dropout(0.2)(features)
    return keras.layers.Dense(len(labels), activation="softmax")(x)


started = time.perf_counter()
feature_seconds = 0.0
if mode == "frozen-fit":
    inputs = keras.Input((224, 224, 3))
    model = keras.Model(inputs, head(inputs, base(inputs, training=False)))
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        pipeline(train_paths, train_ys, True),
        validation_data=pipeline(val_paths, val_ys, False),
        epochs=epochs,
        verbose=0,
    )
elif mode == "precompute":
    train_x = base.predict(pipeline(train_paths, train_ys, False), verbose=0)
    val_x = base.predict(pipeline(val_paths, val_ys, False), verbose=0)
    feature_seconds = time.perf_counter() - started
    inputs = keras.Input((train_x.shape[1],))
    model = keras.Model(inputs, head(inputs, inputs))
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        train_x,
        tf.constant(train_ys),
        validation_data=(val_x, tf.constant(val_ys)),
        batch_size=32,
        epochs=epochs,
        shuffle=True,
        verbose=0,
    )
else:
    raise SystemExit(f"unknown mode {mode}")
seconds = time.perf_counter() - started
print(
    json.dumps(
        {
            "mode": mode,
            "seconds": seconds,
            "feature_seconds": feature_seconds,
            "val_accuracy": float(history.history["val_accuracy"][-1]),
            "images": len(train_paths) + len(val_paths),
            "tf": tf.__version__,
            "keras": keras.__version__,
        }
    )
)
