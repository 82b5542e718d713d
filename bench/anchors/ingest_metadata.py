"""Anchor: ingest of a folder of images into SQLite, in Python.

Walks <root>/<split>/<label>/*, opens each file with Pillow for its size and format, and
writes one row per image into a fresh SQLite file, committing per batch. Files Pillow cannot
read are skipped and counted.

Default (the like-for-like anchor): per file what Menagerie's ingest does (data/ingest and
data/image-probe.ts): read the bytes, sha256 them, skip bytes already stored (a UNIQUE
sha256 column, INSERT OR IGNORE), and decode the image at reduced scale down to 32x32:
`Image.draft` at sharp's shrink-on-load scale (1/8 for 512 -> 32, see sharp_scale.py), then
a lanczos3 resize, as probeImage's `resize(32, 32, { fit: 'inside' })`. Decoding reads every
byte of entropy-coded data, which is what catches a truncated file on both sides.

--header: the reference project's metadata step, header only (no hash, no decode).

Usage: python ingest_metadata.py <root> <db> [--header]
Last stdout line: {"images": N, "seconds": S, "images_per_s": R, "skipped": K}
"""

import hashlib
import io
import json
import os
import sqlite3
import sys
import time

from PIL import Image, UnidentifiedImageError
from sharp_scale import draft_like_sharp

BATCH_SIZE = 500
PROBE_SIZE = 32

SCHEMA = """
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    sha256 TEXT UNIQUE,
    path TEXT NOT NULL,
    label TEXT NOT NULL,
    split TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    format TEXT NOT NULL
)
"""

INSERT = (
    "INSERT OR IGNORE INTO images (sha256, path, label, split, width, height, format) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def iter_images(root):
    """Yields (path, label, split) for files exactly two folders below root."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        parts = [] if rel == "." else rel.split(os.sep)
        if len(parts) != 2:
            continue
        split, label = parts
        for name in sorted(filenames):
            if not name.startswith("."):
                yield os.path.join(dirpath, name), label, split


def probe_header(path):
    with Image.open(path) as im:
        return None, im.width, im.height, im.format


def probe_decode(path):
    with open(path, "rb") as f:
        data = f.read()
    sha256 = hashlib.sha256(data).hexdigest()
    with Image.open(io.BytesIO(data)) as im:
        width, height, fmt = im.width, im.height, im.format
        draft_like_sharp(im, PROBE_SIZE, PROBE_SIZE)
        im.load()
        # fit 'inside': the longer side becomes PROBE_SIZE.
        scale = min(PROBE_SIZE / width, PROBE_SIZE / height)
        im.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.LANCZOS)
    return sha256, width, height, fmt


def flush(conn, batch):
    """Inserts and commits one batch; returns how many rows it wrote."""
    if not batch:
        return 0
    before = conn.total_changes
    conn.executemany(INSERT, batch)
    conn.commit()
    return conn.total_changes - before


def main(argv):
    header = "--header" in argv
    argv = [a for a in argv if a != "--header"]
    if len(argv) != 3:
        print("usage: ingest_metadata.py <root> <db> [--header]", file=sys.stderr)
        return 2
    root, db_path = argv[1], argv[2]
    if not os.path.isdir(root):
        print(f"not a folder: {root}", file=sys.stderr)
        return 2
    for stale in (db_path, db_path + "-journal", db_path + "-wal"):
        if os.path.exists(stale):
            os.remove(stale)

    probe = probe_header if header else probe_decode
    started = time.perf_counter()
    conn = sqlite3.connect(db_path)
    conn.execute(SCHEMA)
    batch = []
    images = skipped = 0
    for path, label, split in iter_images(root):
        try:
            sha256, width, height, fmt = probe(path)
        except (UnidentifiedImageError, OSError):
            skipped += 1
            continue
        batch.append((sha256, path, label, split, width, height, fmt))
        if len(batch) >= BATCH_SIZE:
            images += flush(conn, batch)
            batch = []
    images += flush(conn, batch)
    conn.close()
    seconds = time.perf_counter() - started

    rate = images / seconds if seconds > 0 else 0.0
    print(json.dumps({"images": images, "seconds": round(seconds, 6),
                      "images_per_s": round(rate, 2), "skipped": skipped}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
