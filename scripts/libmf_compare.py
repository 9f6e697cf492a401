#!/usr/bin/env python3
"""wildsgd against LIBMF on MovieLens 100k (u1.base -> u1.test), side by side in one run.

Needs `pip install libmf==0.9.2 numpy` and a release build (`cargo build --release`).
Usage: python3 scripts/libmf_compare.py [--data DIR] [--repeat 5] [--threads 1,2]

LIBMF runs in-process with rank 32, 20 iterations and its other defaults (λ 0.04 on
p and q, η 0.1, its AdaGrad schedule); its time is the `fit` call. Its Python binding's
`predict` reads the (user, item) pairs column-major, so they are passed in Fortran
order. wildsgd runs `train --model mf --rank 32 --epochs 20` with no other tuning
flag; its time is `train_seconds` (training only, as LIBMF's) and the whole process's
wall time (parsing included) is shown too. Medians of --repeat runs.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def load(path):
    a = np.loadtxt(path, usecols=(0, 1, 2), dtype=np.float64)
    return a


def libmf_run(train, test, threads):
    from libmf import mf

    # LIBMF's ids are 0-based matrix indices.
    tr = train.copy()
    tr[:, 0] -= 1
    tr[:, 1] -= 1
    m = mf.MF(k=32, nr_iters=20, nr_threads=threads, quiet=True)
    t0 = time.perf_counter()
    m.fit(tr)
    secs = time.perf_counter() - t0
    pairs = np.asfortranarray(test[:, :2] - 1, dtype=np.float32)
    pred = m.predict(pairs)
    rmse = float(np.sqrt(np.mean((pred - test[:, 2]) ** 2)))
    return secs, rmse


def wildsgd_run(binary, base, test, threads, scheme):
    cmd = [binary, "train", "--data", base, "--test", test, "--model", "mf",
           "--rank", "32", "--epochs", "20", "--threads", str(threads),
           "--scheme", scheme, "--quiet", "--report", "-"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t0
    done = [json.loads(l) for l in out.splitlines() if '"done"' in l][0]
    return done["train_seconds"], wall, done["test_rmse"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/datasets/movielens-100k")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--binary", default="target/release/wildsgd")
    a = ap.parse_args()
    base = os.path.join(a.data, "u1.base")
    test = os.path.join(a.data, "u1.test")
    train_m, test_m = load(base), load(test)
    print(f"MovieLens 100k u1 split, rank 32, 20 epochs, median of {a.repeat} runs, "
          f"{os.cpu_count()} cores")
    print(f"{'solver':<22} {'threads':>7} {'train s':>9} {'wall s':>9} {'test RMSE':>10}")
    for t in [int(x) for x in a.threads.split(",")]:
        runs = [libmf_run(train_m, test_m, t) for _ in range(a.repeat)]
        print(f"{'LIBMF 0.9.2 (defaults)':<22} {t:>7} {statistics.median(r[0] for r in runs):>9.4f} "
              f"{'-':>9} {statistics.median(r[1] for r in runs):>10.4f}")
        for scheme in ["block", "hogwild"]:
            runs = [wildsgd_run(a.binary, base, test, t, scheme) for _ in range(a.repeat)]
            print(f"{'wildsgd ' + scheme:<22} {t:>7} {statistics.median(r[0] for r in runs):>9.4f} "
                  f"{statistics.median(r[1] for r in runs):>9.4f} "
                  f"{statistics.median(r[2] for r in runs):>10.4f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
