"""Anchor: Keras 3 `model.fit` throughput on the reference CNN, random tensors.

Conv2D 32 3x3 relu - MaxPool 2 - Conv2D 64 3x3 relu - MaxPool 2 - Flatten - Dense 128 relu -
Dropout 0.5 - Dense N softmax; Adam 1e-3, categorical crossentropy, TF 2.21 defaults (threads,
oneDNN). One `model.fit` call; its first epoch (graph tracing, allocation) is the warm-up.

With --paced, each timed epoch waits for a line on stdin and reports {"seconds": s} on
stdout when done, so the caller can interleave its own epochs with ours on a shared machine.

Usage: python train_throughput.py <examples> <batch> <epochs> [size] [classes] [--paced]
Last stdout line: {"epoch_seconds": [...], "images_per_s": [...], "tf": "2.21.0", ...}
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from reference_cnn import reference_cnn  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def __init__(self, paced):
        super().__init__()
        self.paced = paced
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        if self.paced and epoch > 0 and not sys.stdin.readline():
            raise SystemExit("stdin closed before the last epoch")
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)
        if self.paced:
            print(json.dumps({"epoch": epoch, "seconds": self.seconds[-1]}), flush=True)


def main(argv):
    paced = "--paced" in argv
    argv = [a for a in argv if a != "--paced"]
    examples, batch, epochs = int(argv[1]), int(argv[2]), int(argv[3])
    size = int(argv[4]) if len(argv) > 4 else 64
    classes = int(argv[5]) if len(argv) > 5 else 3
    rng = np.random.default_rng(0)
    x = rng.random((examples, size, size, 3), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, classes, examples), classes)

    keras.utils.set_random_seed(0)
    model = reference_cnn(size, classes)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    timer = EpochTimer(paced)
    # One fit call, as a user writes it; epoch 0 (tracing, allocation) is the warm-up.
    model.fit(x, y, batch_size=batch, epochs=epochs + 1, verbose=0, callbacks=[timer])
    seconds = timer.seconds[1:]
    print(
        json.dumps(
            {
                "epoch_seconds": [round(s, 4) for s in seconds],
                "images_per_s": [round(examples / s, 2) for s in seconds],
                "tf": tf.__version__,
                "keras": keras.__version__,
                # Keras 3 compiles the train step with XLA by default ("auto"), on CPU too.
                "jit_compile": bool(model.jit_compile),
                "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
