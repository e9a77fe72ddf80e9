"""scikit-learn's KMeans on the data kmeans_bench ran on, from the same initial centers.

    /usr/bin/python3 kmeans_bench.py <train-images-idx3-ubyte.gz> <k> <out-prefix>

Reads <out-prefix>.init.f32 / .centers.f32 / .pipeline.f32 written by kmeans_bench and prints
the scikit-learn times and inertias, the inertias of Hearth's centers measured here in float64,
and how far the two final center sets are apart. Run with OPENBLAS_CORETYPE unset (the default
OpenBLAS kernel for the CPU) and numpy on OpenBLAS.
"""
import gzip
import json
import sys
import time

import numpy as np
from sklearn.cluster import KMeans


def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    n, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows * cols)


def main():
    path, k, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    x = (load_idx(path) / 255.0).astype(np.float32)
    init = np.fromfile(prefix + ".init.f32", dtype=np.float32).reshape(k, -1)
    ours = np.fromfile(prefix + ".centers.f32", dtype=np.float32).reshape(k, -1)
    x64 = x.astype(np.float64)
    x_norms = (x64 ** 2).sum(1)[:, None]

    def inertia(centers):
        c = centers.astype(np.float64)
        d = x_norms - 2 * x64 @ c.T + (c ** 2).sum(1)[None, :]
        return float(np.maximum(d.min(1), 0).sum())

    out = {"hearth_core_inertia": inertia(ours),
           "hearth_pipeline_inertia": inertia(
               np.fromfile(prefix + ".pipeline.f32", dtype=np.float32).reshape(k, -1))}
    for name, kwargs in [("same_init", dict(init=init, n_init=1)),
                         ("kmeans++", dict(init="k-means++", n_init=1, random_state=0))]:
        start = time.perf_counter()
        model = KMeans(n_clusters=k, tol=0, max_iter=300, algorithm="lloyd", **kwargs).fit(x)
        out[name] = {"seconds": round(time.perf_counter() - start, 4),
                     "iterations": int(model.n_iter_), "inertia": inertia(model.cluster_centers_)}
        if name == "same_init":
            out["max_center_gap"] = float(np.abs(np.sort(model.cluster_centers_, 0)
                                                 - np.sort(ours, 0)).max())
    try:
        from threadpoolctl import threadpool_info
        out["blas"] = [(i["internal_api"], i.get("architecture"), i["num_threads"])
                       for i in threadpool_info()]
    except ImportError:
        pass
    print(json.dumps(out))


if __name__ == "__main__":
    main()
