"""Anchor: Keras 3 inference with the reference CNN (random weights), TF 2.21 defaults.

single: per call, decode one JPEG from bytes in memory with Pillow, resize to 64x64 (Pillow's
        default filter, as the reference project's serving code), scale to [0, 1], then
        `model.predict(x, verbose=0)`; and the same with a direct `model(x, training=False)`
        call, which is what a careful Keras user writes. Calls alternate between the two.
batch:  images decoded once, `model.predict(x, batch_size=B, verbose=0)` over all of them.
        With --paced, after the warm-up it prints {"ready": true}, then times one pass per
        line read on stdin, answering {"images_per_s": r}, until stdin closes.

Usage: python predict_keras.py single <calls> <jpeg>...
       python predict_keras.py batch <images> <batch> <repeats> <jpeg>... [--paced]
Last stdout line: a JSON object of figures (milliseconds per call, or images/s).
"""

import io
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402
from reference_cnn import reference_cnn  # noqa: E402

SIZE = 64
CLASSES = 3
WARMUP = 20


def decode(data):
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB").resize((SIZE, SIZE))
        return np.asarray(im, dtype=np.float32) / 255.0


def single(model, calls, images):
    def via_predict(data):
        return model.predict(decode(data)[None], verbose=0)

    def via_call(data):
        return model(decode(data)[None], training=False).numpy()

    timings = {"predict": [], "call": []}
    for i in range(WARMUP + calls):
        for name, fn in (("predict", via_predict), ("call", via_call)):
            started = time.perf_counter()
            fn(images[i % len(images)])
            if i >= WARMUP:
                timings[name].append((time.perf_counter() - started) * 1000)
    decode_ms = []
    for i in range(calls):
        started = time.perf_counter()
        decode(images[i % len(images)])
        decode_ms.append((time.perf_counter() - started) * 1000)
    figures = {}
    for name, values in timings.items():
        figures[f"{name}_p50_ms"] = float(np.percentile(values, 50))
        figures[f"{name}_p99_ms"] = float(np.percentile(values, 99))
    figures["decode_p50_ms"] = float(np.percentile(decode_ms, 50))
    return figures


def batch(model, count, batch_size, repeats, images, paced=False):
    decoded = np.stack([decode(data) for data in images])
    x = np.concatenate([decoded] * (count // len(decoded) + 1))[:count]
    model.predict(x[: batch_size * 4], batch_size=batch_size, verbose=0)  # warm-up

    def one_pass():
        started = time.perf_counter()
        model.predict(x, batch_size=batch_size, verbose=0)
        return count / (time.perf_counter() - started)

    rates = []
    if paced:
        one_pass()  # a full pass, so the first timed one is warm too
        print(json.dumps({"ready": True}), flush=True)
        while sys.stdin.readline():
            rates.append(one_pass())
            print(json.dumps({"images_per_s": rates[-1]}), flush=True)
    else:
        rates = [one_pass() for _ in range(repeats)]
    return {"images_per_s": rates}


def main(argv):
    paced = "--paced" in argv
    argv = [a for a in argv if a != "--paced"]
    mode = argv[1]
    keras.utils.set_random_seed(0)
    model = reference_cnn(SIZE, CLASSES)
    if mode == "single":
        calls, paths = int(argv[2]), argv[3:]
        figures = single(model, calls, [open(p, "rb").read() for p in paths])
    elif mode == "batch":
        count, batch_size, repeats, paths = int(argv[2]), int(argv[3]), int(argv[4]), argv[5:]
        data = [open(p, "rb").read() for p in paths]
        figures = batch(model, count, batch_size, repeats, data, paced)
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    figures.update({"tf": tf.__version__, "keras": keras.__version__})
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
