"""scikit-learn's PCA on the data pca_bench runs on: Fashion-MNIST train images / 255, float32.

    /usr/bin/python3 pca_bench.py <train-images-idx3-ubyte.gz> [num_components=50] [repeats=5]

Prints, as JSON, the median wall time of PCA(svd_solver='full') and PCA(svd_solver='randomized',
random_state=0) and their explained variance ratio sums, plus the exact ratio sum from a float64
eigendecomposition of the covariance (the reference pca_bench's numbers are compared with).
Run with numpy on OpenBLAS (libopenblas0-pthread) and OPENBLAS_CORETYPE unset.
"""
import gzip
import json
import sys
import time

import numpy as np
from sklearn.decomposition import PCA


def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    n, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows * cols)


def main():
    path = sys.argv[1]
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    x = (load_idx(path) / 255.0).astype(np.float32)

    x64 = x.astype(np.float64)
    centred = x64 - x64.mean(0)
    eigenvalues = np.linalg.eigvalsh(centred.T @ centred)[::-1]
    exact = eigenvalues / eigenvalues.sum()
    out = {"exact_evr_sum": float(exact[:k].sum())}

    for solver in ("full", "randomized"):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model = PCA(n_components=k, svd_solver=solver, random_state=0).fit(x)
            times.append(time.perf_counter() - start)
        ratio = model.explained_variance_ratio_
        out[solver] = {"median_seconds": round(float(np.median(times)), 4),
                       "min_seconds": round(min(times), 4),
                       "evr_sum": float(ratio.sum()),
                       "max_evr_gap_to_exact": float(np.abs(ratio - exact[:k]).max())}
    try:
        from threadpoolctl import threadpool_info
        out["blas"] = [(i["internal_api"], i.get("architecture"), i["num_threads"])
                       for i in threadpool_info()]
    except ImportError:
        pass
    print(json.dumps(out))


if __name__ == "__main__":
    main()
