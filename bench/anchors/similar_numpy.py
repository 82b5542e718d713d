"""Anchor: exact top-k by cosine distance in numpy, brute force over the same vectors.

Reads N×D float32 vectors and Q×D float32 queries (raw little-endian files written by
bench/similar.ts), normalises both, and times each query alone: one matrix-vector product
and an argpartition for the k best, then a sort of those k. That is what a careful Python
service without a vector index would write.

Usage: python similar_numpy.py <vectors.f32> <queries.f32> <dim> <k>
Last stdout line: {"queries": Q, "p50_ms": ..., "p99_ms": ..., "first_ids": [...]}
"""

import json
import sys
import time

import numpy as np


def main() -> None:
    vectors_file, queries_file, dim, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    vectors = np.fromfile(vectors_file, dtype=np.float32).reshape(-1, dim)
    queries = np.fromfile(queries_file, dtype=np.float32).reshape(-1, dim)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    latencies = []
    first = None
    for q in queries:
        started = time.perf_counter()
        unit = q / np.linalg.norm(q)
        distances = 1.0 - vectors @ unit
        best = np.argpartition(distances, k)[:k]
        best = best[np.argsort(distances[best])]
        latencies.append((time.perf_counter() - started) * 1000)
        if first is None:
            first = best
    print(
        json.dumps(
            {
                "queries": len(queries),
                "p50_ms": float(np.percentile(latencies, 50)),
                "p99_ms": float(np.percentile(latencies, 99)),
                # Row indices of the first query's answer, so the caller checks both agree.
                "first_ids": [int(i) for i in first],
            }
        )
    )


if __name__ == "__main__":
    main()
