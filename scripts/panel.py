#!/usr/bin/env python3
"""The convergence panel: on every LIBSVM set in ../shared/datasets/libsvm-panel (and a9a),
the exact optimum of the L2-regularized logistic objective at C = 1 (the bias a regularized
feature, LIBLINEAR's -B 1), found here by Newton's method in numpy to a gradient norm below
1e-9 (independent of wildsgd's code), against wildsgd runs. Prints, per data set, the test
log loss at the optimum and each run's excess test loss and excess training objective
(relative to the optimum), then the median and the worst over the panel.

    python3 scripts/panel.py [--bin target/release/wildsgd] [--runs "sgd;adagrad"] [-- extra flags]

A run is `name=flags` or just flags, separated by `;`, e.g.
    --runs "default=;adagrad=--optimizer adagrad;fixed=--lr-mode fixed"
Data sets without a test file are split 80/20 here (seeded), written to temporary files.
Needs numpy.
"""
import argparse, json, os, random, shlex, statistics, subprocess, sys, tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "datasets")

def sets():
    out = [("a9a", os.path.join(SHARED, "a9a", "a9a"), os.path.join(SHARED, "a9a", "a9a.t"))]
    panel = os.path.join(SHARED, "libsvm-panel")
    for name in sorted(os.listdir(panel)) if os.path.isdir(panel) else []:
        d = os.path.join(panel, name)
        if not os.path.isdir(d):
            continue
        files = sorted(f for f in os.listdir(d) if not f.endswith(".md"))
        train = [f for f in files if not f.endswith(".t")]
        test = [f for f in files if f.endswith(".t")]
        if train:
            out.append((name, os.path.join(d, train[0]), os.path.join(d, test[0]) if test else None))
    return out

def parse(path):
    rows = []
    for line in open(path):
        t = line.split()
        if t:
            rows.append((float(t[0]), [(int(k), float(v)) for k, v in (x.split(":") for x in t[1:])]))
    return rows

def dense(rows, d):
    lo = min(r[0] for r in rows)
    X = np.zeros((len(rows), d + 1))
    y = np.array([1.0 if r[0] != lo else -1.0 for r in rows])
    for i, (_, feats) in enumerate(rows):
        for k, v in feats:
            if k <= d:
                X[i, k - 1] = v
    X[:, d] = 1.0
    return X, y

def optimum(X, y):
    """Newton's method with backtracking on (1/n)·Σ log(1+exp(−y·Xw)) + (λ/2)·‖w‖², λ = 1/n."""
    n, k = X.shape
    lam = 1.0 / n
    f = lambda w: np.logaddexp(0, -y * (X @ w)).mean() + 0.5 * lam * w @ w
    w = np.zeros(k)
    for _ in range(200):
        m = y * (X @ w)
        p = 0.5 * (1 - np.tanh(0.5 * m))  # sigmoid(-m), overflow-free
        g = -(X.T @ (y * p)) / n + lam * w
        if np.linalg.norm(g) < 1e-9:
            break
        H = (X.T * (p * (1 - p))) @ X / n + lam * np.eye(k)
        step = np.linalg.solve(H, g)
        t, f0 = 1.0, f(w)
        while f(w - t * step) > f0 - 1e-4 * t * (g @ step) and t > 1e-12:
            t *= 0.5
        w = w - t * step
    return w, f(w)

def logloss(X, y, w):
    return float(np.logaddexp(0, -y * (X @ w)).mean())

def split(path, tmp):
    """A seeded 80/20 split of a file with no test file; returns the two paths."""
    lines = [l for l in open(path) if l.strip()]
    order = list(range(len(lines)))
    random.Random(42).shuffle(order)
    cut = len(lines) * 4 // 5
    out = []
    for part, idx in (("train", order[:cut]), ("test", order[cut:])):
        p = os.path.join(tmp, os.path.basename(path) + "." + part)
        with open(p, "w") as f:
            f.writelines(lines[i] for i in sorted(idx))
        out.append(p)
    return out

def run(binary, train, test, flags, extra, d):
    with tempfile.NamedTemporaryFile(suffix=".json") as rep:
        cmd = [binary, "train", "--data", train, "--test", test, "--n-features", str(d),
               "--report", rep.name, "--quiet"]
        cmd += flags + extra
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            return {"error": p.stderr.strip().splitlines()[-1] if p.stderr else f"exit {p.returncode}"}
        lines = [json.loads(l) for l in open(rep.name) if l.strip()]
        return [l for l in lines if l.get("event") == "done"][0]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "wildsgd"))
    ap.add_argument("--runs", default="default=")
    ap.add_argument("--only", default="")
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()
    runs = []
    for r in a.runs.split(";"):
        name, _, flags = r.partition("=") if "=" in r else (r, "", r)
        runs.append((name.strip(), shlex.split(flags)))
    excess = {n: [] for n, _ in runs}
    obj_excess = {n: [] for n, _ in runs}
    print(f"{'data':<22}{'optimum':>9}" + "".join(f"{n:>22}" for n, _ in runs))
    tmp = tempfile.mkdtemp()
    for name, train, test in sets():
        if a.only and name not in a.only.split(","):
            continue
        if test is None:
            train, test = split(train, tmp)
        tr, te = parse(train), parse(test)
        dim = max(k for _, f in tr + te for k, _ in f)
        Xtr, ytr = dense(tr, dim)
        Xte, yte = dense(te, dim)
        # The test file's labels follow the training file's: the smaller value is negative.
        w, pstar = optimum(Xtr, ytr)
        tstar = logloss(Xte, yte, w)
        row = f"{name:<22}{tstar:>9.4f}"
        for n, flags in runs:
            d = run(a.bin, train, test, flags, a.extra, dim)
            if "error" in d:
                row += f"{'error':>22}"
                excess[n].append(float("inf"))
                continue
            e = d["test_loss"] / tstar - 1
            o = d["objective"] / pstar - 1
            excess[n].append(e)
            obj_excess[n].append(o)
            row += f"{100 * e:>+10.2f}% {100 * o:>+9.2f}%"
        print(row, flush=True)
    print("excess test loss / excess objective over the optimum: median, worst")
    for n, _ in runs:
        ex, ob = excess[n], obj_excess[n]
        if ex:
            print(f"  {n:<20} test {100 * statistics.median(ex):+.2f}% (worst {100 * max(ex):+.2f}%)"
                  f"  objective {100 * statistics.median(ob):+.2f}% (worst {100 * max(ob):+.2f}%)")

if __name__ == "__main__":
    main()
