#!/usr/bin/env python3
"""Figures of training across MPI ranks (README: Across machines).

Runs one process (hogwild, the default threads) and every scheme of `--distributed`
under `mpirun -n RANKS` on the same data and passes, RUNS times each, and prints a
Markdown table of medians: final test loss (and its ratio to one process's), training
seconds per epoch, seconds communicating per epoch on rank 0 and their ratio (the
communication overhead), seconds waiting for the slower rank before collectives, and
bytes per epoch. With `--slow` it also runs downpour and
delay-tolerant with rank 1's messages delayed.

    python3 scripts/distributed.py --train train.svm --test test.svm [--ranks 2] [--runs 3]

Needs a build with the feature: cargo build --release --features distributed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "wildsgd")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, check=False)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    events = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    done = next(e for e in events if e["event"] == "done")
    epochs = [e for e in events if e["event"] == "epoch"]
    return done, epochs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--model", default=None, help="ratings data: run dsgd (mf) only")
    ap.add_argument("--slow", default=None, help="R:MS for the slowed-rank rows")
    ap.add_argument("--tau", default=None, help="ROWS for average and easgd rows with --tau")
    args = ap.parse_args()
    base = [BIN, "train", "--data", args.train, "--test", args.test, "-q",
            "--epochs", str(args.epochs), "--report", "-"]
    mpi = ["mpirun", "--oversubscribe", "--bind-to", "none", "-n", str(args.ranks)]
    mf = args.model == "mf"
    metric = "test_rmse" if mf else "test_loss"
    rows = [("one process", base)]
    schemes = ["dsgd"] if mf else ["average", "easgd", "downpour", "delay-tolerant"]
    rows += [(s, mpi + base + ["--distributed", s]) for s in schemes]
    if args.tau and not mf:
        for s in ["average", "easgd"]:
            rows.append((f"{s}, τ = {args.tau} rows", mpi + base + ["--distributed", s, "--tau", args.tau]))
    if args.slow and not mf:
        for s in ["downpour", "delay-tolerant"]:
            rows.append((f"{s}, rank {args.slow.split(':')[0]} slowed {args.slow.split(':')[1]} ms",
                         mpi + base + ["--distributed", s, "--slow-rank", args.slow]))
    print(f"{args.ranks} ranks, {args.epochs} epochs, median of {args.runs} runs; "
          f"train {args.train}, test {args.test}")
    print()
    print(f"| run | {metric.replace('_', ' ')} | vs one process | s/epoch | comm s/epoch (rank 0) | comm share | wait s/epoch | MB/epoch |")
    print("|---|---|---|---|---|---|---|---|")
    ref = None
    for name, cmd in rows:
        res = [run(cmd) for _ in range(args.runs)]
        loss = statistics.median(d[metric] for d, _ in res)
        sec = statistics.median(d["train_seconds"] / d["epochs"] for d, _ in res)
        if ref is None:
            ref = loss
        if "comm_seconds" in res[0][0]:
            comm = statistics.median(d["comm_seconds"] / d["epochs"] for d, _ in res)
            mb = statistics.median(d["comm_bytes"] / d["epochs"] / 1e6 for d, _ in res)
            share = statistics.median(d["comm_seconds"] / max(d["train_seconds"], 1e-12) for d, _ in res)
            wait = statistics.median(d["wait_seconds"] / d["epochs"] for d, _ in res)
            extra = f"{comm:.4f} | {100 * share:.1f}% | {wait:.4f} | {mb:.1f}"
        else:
            extra = "– | – | – | –"
        print(f"| {name} | {loss:.4f} | {100 * (loss / ref - 1):+.2f}% | {sec:.4f} | {extra} |")


if __name__ == "__main__":
    main()
