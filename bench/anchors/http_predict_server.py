"""Anchor: FastAPI + uvicorn + Keras 3 on TF 2.21, one image per request, no batching.

`POST /predict` takes a multipart form with one field `file`, reads its bytes, decodes them
with Pillow at the 'tensorflow' decoder's DCT scale (1/8 for 512 -> 64, see sharp_scale.py)
and a bilinear resize to 64x64, as Menagerie's serving decodes for the reference model, scales to [0, 1] and runs
`model.predict` on the reference CNN (random weights, seed 0): the reference project's
serving code, answering JSON with the label, its confidence and every class's probability.
`POST /predict-call` is the same with `model(x, training=False)`, what a careful Keras user
writes for one image. Both are plain `def`s, so FastAPI runs them on its thread pool and
requests overlap; `POST /predict-async` is `/predict` as an `async def` with
`await file.read()` (the FastAPI docs' upload idiom), whose blocking predict holds the event
loop, one request at a time.

Usage: python http_predict_server.py [--workers N]
Binds 127.0.0.1 on a free port and prints `{"port": N}` on stderr before serving; runs
until SIGINT/SIGTERM (uvicorn's graceful shutdown). Logging is uvicorn's default
(info, one access line per request), as `uvicorn main:app` runs it.
"""

import io
import json
import os
import socket
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI, File, UploadFile  # noqa: E402
from PIL import Image  # noqa: E402
from reference_cnn import reference_cnn  # noqa: E402
from sharp_scale import draft_like_tensorflow  # noqa: E402

SIZE = 64
LABELS = ["cat", "dog", "wild"]


def decode(data):
    with Image.open(io.BytesIO(data)) as im:
        draft_like_tensorflow(im, SIZE)
        im = im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
        return np.asarray(im, dtype=np.float32) / 255.0


keras.utils.set_random_seed(0)
model = reference_cnn(SIZE, len(LABELS))
app = FastAPI()


def answer(data, call=False):
    x = decode(data)[None]
    probabilities = (model(x, training=False).numpy() if call else model.predict(x, verbose=0))[0]
    best = int(np.argmax(probabilities))
    return {
        "label": LABELS[best],
        "confidence": float(probabilities[best]),
        "probabilities": {label: float(p) for label, p in zip(LABELS, probabilities)},
    }


@app.post("/predict")
def predict(file: UploadFile = File(...)):
    return answer(file.file.read())


@app.post("/predict-call")
def predict_call(file: UploadFile = File(...)):
    return answer(file.file.read(), call=True)


@app.post("/predict-async")
async def predict_async(file: UploadFile = File(...)):
    return answer(await file.read())


def main(argv):
    workers = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 1
    # Bind first so the harness learns the port before uvicorn starts; every worker
    # accepts on this one socket, as `uvicorn --workers N` does.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(json.dumps({"port": sock.getsockname()[1]}), file=sys.stderr, flush=True)
    if workers == 1:
        config = uvicorn.Config(app, log_level="info", access_log=True)
        uvicorn.Server(config).run(sockets=[sock])
    else:
        # Each worker process imports this module again and builds its own model.
        sock.set_inheritable(True)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        uvicorn.run(
            "http_predict_server:app",
            fd=sock.fileno(),
            workers=workers,
            log_level="info",
            access_log=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
