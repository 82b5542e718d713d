"""Anchor: Keras 3 inference with the reference CNN (random weights), TF 2.21 defaults.

Every image is decoded from JPEG bytes in memory as Menagerie's serving decodes it: Pillow
`draft` at the scale of the reference model's 'tensorflow' decoder (data/preprocess.ts;
1/8 for 512 -> 64, straight to 64x64, see sharp_scale.py), RGB, a bilinear resize to 64x64
(a copy when the draft is already that size), scaled to [0, 1].

single: per call, decode one image, then `model(x, training=False)` (what a careful Keras
        user writes for one image: no tf.data pipeline, no per-call graph setup) and, for
        comparison, `model.predict(x, verbose=0)`; calls alternate between the two, and the
        decode alone is timed too. With --paced, after the warm-up it prints
        {"ready": true}, then runs <calls> more of each per line read on stdin, answering
        {"call_ms": [...], "predict_ms": [...], "decode_ms": [...]}.
batch:  per pass, decode N images and classify them B at a time with `model(x)` (and, for
        comparison, `model.predict(x, batch_size=B)` on the decoded pass). With --paced,
        after a warm-up it prints {"ready": true}, then times one pass per line read on
        stdin, answering {"call_images_per_s": r, "predict_images_per_s": r, ...}.

Usage: python predict_keras.py single <calls> <jpeg>... [--paced]
       python predict_keras.py batch <images> <batch> <jpeg>... [--paced]
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
from sharp_scale import draft_like_tensorflow  # noqa: E402

SIZE = 64
CLASSES = 3
WARMUP = 20


def decode(data):
    with Image.open(io.BytesIO(data)) as im:
        draft_like_tensorflow(im, SIZE)
        im = im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
        return np.asarray(im, dtype=np.float32) / 255.0


def single(model, calls, images, paced):
    def via_call(data):
        return model(decode(data)[None], training=False).numpy()

    def via_predict(data):
        return model.predict(decode(data)[None], verbose=0)

    def run(count, offset):
        timings = {"call_ms": [], "predict_ms": [], "decode_ms": []}
        for i in range(offset, offset + count):
            data = images[i % len(images)]
            for name, fn in (("call_ms", via_call), ("predict_ms", via_predict), ("decode_ms", decode)):
                started = time.perf_counter()
                fn(data)
                timings[name].append((time.perf_counter() - started) * 1000)
        return timings

    run(WARMUP, 0)
    if not paced:
        timings = run(calls, 0)
    else:
        # Each line on stdin asks for `calls` more calls of each kind, answered as one line.
        print(json.dumps({"ready": True}), flush=True)
        timings = {"call_ms": [], "predict_ms": [], "decode_ms": []}
        done = 0
        while sys.stdin.readline():
            step = run(calls, done)
            done += calls
            for name, values in step.items():
                timings[name] += values
            print(json.dumps(step), flush=True)
    figures = {}
    for name, values in timings.items():
        key = name[: -len("_ms")]
        figures[f"{key}_p50_ms"] = float(np.percentile(values, 50))
        figures[f"{key}_p99_ms"] = float(np.percentile(values, 99))
    return figures


def batch(model, count, batch_size, images, paced):
    order = [images[i % len(images)] for i in range(count)]

    def one_pass():
        started = time.perf_counter()
        decoded = []
        for start in range(0, count, batch_size):
            x = np.stack([decode(data) for data in order[start : start + batch_size]])
            model(x, training=False).numpy()
            decoded.append(x)
        call_seconds = time.perf_counter() - started
        x = np.concatenate(decoded)
        started = time.perf_counter()
        model.predict(x, batch_size=batch_size, verbose=0)
        predict_seconds = time.perf_counter() - started
        decode_started = time.perf_counter()
        for data in order:
            decode(data)
        decode_seconds = time.perf_counter() - decode_started
        return {
            "call_images_per_s": count / call_seconds,
            # model.predict on the pass's decoded images, plus the decode it did not do.
            "predict_images_per_s": count / (predict_seconds + decode_seconds),
            "decode_images_per_s": count / decode_seconds,
        }

    one_pass()  # warm-up: traces and allocates
    rates = []
    if paced:
        print(json.dumps({"ready": True}), flush=True)
        while sys.stdin.readline():
            rates.append(one_pass())
            print(json.dumps(rates[-1]), flush=True)
    else:
        rates = [one_pass()]
    return {"passes": rates}


def main(argv):
    paced = "--paced" in argv
    argv = [a for a in argv if a != "--paced"]
    mode = argv[1]
    keras.utils.set_random_seed(0)
    model = reference_cnn(SIZE, CLASSES)
    if mode == "single":
        calls, paths = int(argv[2]), argv[3:]
        figures = single(model, calls, [open(p, "rb").read() for p in paths], paced)
    elif mode == "batch":
        count, batch_size, paths = int(argv[2]), int(argv[3]), argv[4:]
        figures = batch(model, count, batch_size, [open(p, "rb").read() for p in paths], paced)
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    figures.update({"tf": tf.__version__, "keras": keras.__version__})
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
