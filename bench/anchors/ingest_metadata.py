"""Anchor: the reference Python project's ingestion metadata step.

Walks <root>/<split>/<label>/*, opens each file with Pillow to read its size and format
(Pillow reads the header only, as the reference project relied on), and writes one row
per image into a fresh SQLite file, committing per batch. Files Pillow cannot identify
are skipped and counted.

With --decode it also does what Menagerie's ingest does per file (sha256 of the bytes and a
full decode, which is what catches truncated files): a like-for-like figure, for information.

Usage: python ingest_metadata.py <root> <db> [--decode]
Last stdout line: {"images": N, "seconds": S, "images_per_s": R, "skipped": K}
"""

import hashlib
import json
import os
import sqlite3
import sys
import time

from PIL import Image, UnidentifiedImageError

BATCH_SIZE = 500

SCHEMA = """
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    label TEXT NOT NULL,
    split TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    format TEXT NOT NULL
)
"""

INSERT = "INSERT INTO images (path, label, split, width, height, format) VALUES (?, ?, ?, ?, ?, ?)"


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


def flush(conn, batch):
    """Inserts and commits one batch; returns how many rows it wrote."""
    if batch:
        conn.executemany(INSERT, batch)
        conn.commit()
    return len(batch)


def main(argv):
    decode = "--decode" in argv
    argv = [a for a in argv if a != "--decode"]
    if len(argv) != 3:
        print("usage: ingest_metadata.py <root> <db> [--decode]", file=sys.stderr)
        return 2
    root, db_path = argv[1], argv[2]
    if not os.path.isdir(root):
        print(f"not a folder: {root}", file=sys.stderr)
        return 2
    for stale in (db_path, db_path + "-journal"):
        if os.path.exists(stale):
            os.remove(stale)

    started = time.perf_counter()
    conn = sqlite3.connect(db_path)
    conn.execute(SCHEMA)
    batch = []
    images = skipped = 0
    for path, label, split in iter_images(root):
        try:
            if decode:
                with open(path, "rb") as f:
                    hashlib.sha256(f.read()).hexdigest()
            with Image.open(path) as im:
                width, height = im.size
                fmt = im.format
                if decode:
                    im.load()
        except (UnidentifiedImageError, OSError):
            skipped += 1
            continue
        batch.append((path, label, split, width, height, fmt))
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
