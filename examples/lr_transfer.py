#!/usr/bin/env python3
"""Learning-rate transfer across width: the digits MLP at several widths, modc against AdamW.

    PYTHONPATH=build/python python3 examples/lr_transfer.py            # docs/training_lr_transfer.png
    PYTHONPATH=build/python python3 examples/lr_transfer.py --quick    # widths 64 and 256, 3 lrs each

The promise of the modular norm: once the updates are measured in the network's modular norm
(each weight's update is its target times its duality map, whatever the width), the best
learning rate should not move as the network widens. This script trains the MLP of
train_digits.py (64 -> width -> width -> 10, the same initialisation: orthogonal matrices
scaled to RMS -> RMS norm 1, zero biases) at each width, for each learning rate of a
log-spaced sweep, with modc (digits.mod's `muon` block) and with AdamW, under one fixed short
budget, and plots the final training loss (the trained model on the whole training part) and
the test accuracy against the learning rate, one line per width.

For modc the swept lr is the weights' (the matrices'); the biases stay with the fallback AdamW
at train_digits.BIAS_LR. For AdamW the swept lr is every parameter's.
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_digits as td  # noqa: E402

LRS = {
    "modc": [0.01, 0.0215, 0.0464, 0.1, 0.215, 0.464, 1.0],
    "adamw": [0.0001, 0.000215, 0.000464, 0.001, 0.00215, 0.00464, 0.01, 0.0215, 0.0464],
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", default="64,128,256,512,1024", help="comma-separated widths (default 64,...,1024)")
    p.add_argument("--epochs", type=int, default=5, help="epochs of every run (default 5)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per (width, lr); the mean is plotted (default 2)")
    p.add_argument("--optimizers", default="modc,adamw", help="comma-separated subset of modc,adamw")
    p.add_argument("--modc-lrs", default="", help="comma-separated learning rates for modc (default: a 7-point grid)")
    p.add_argument("--adamw-lrs", default="", help="comma-separated learning rates for AdamW (default: 9 points)")
    p.add_argument("--quick", action="store_true", help="widths 64 and 256, 3 learning rates each, 2 epochs")
    p.add_argument("--plot", default=None,
                   help="the figure ('' for none; default docs/training_lr_transfer.png, none with --quick)")
    p.add_argument("--json", default="", help="write the results as JSON to this file")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    return p.parse_args(argv)


def run(kinds, widths, lrs, data, epochs, batch_size, seeds, log=print):
    """{kind: {width: [{lr, train_loss, test_acc, diverged}]}} (means over seeds), and timings."""
    results, timings = {}, {}
    for kind in kinds:
        results[kind], timings[kind] = {}, {}
        for width in widths:
            t0 = time.perf_counter()
            rows = []
            for lr in lrs[kind]:
                runs = [td.train(kind, lr, data, epochs=epochs, batch_size=batch_size, seed=s, width=width,
                                 curves=False) for s in range(seeds)]
                diverged = any(r["diverged"] or not math.isfinite(r["final_train_loss"]) for r in runs)
                loss = math.inf if diverged else float(np.mean([r["final_train_loss"] for r in runs]))
                acc = float(np.mean([r["eval_acc"] for r in runs]))
                rows.append({"lr": lr, "train_loss": loss, "test_acc": acc, "diverged": diverged})
            timings[kind][width] = time.perf_counter() - t0
            best = min(rows, key=lambda r: r["train_loss"])
            results[kind][width] = rows
            log(f"{kind:6s} width {width:5d}: best lr {best['lr']:<9g} (train loss {best['train_loss']:.3g}, "
                f"test {100 * best['test_acc']:.2f}%); " +
                " ".join(f"{r['lr']:g}:{r['train_loss']:.2g}" for r in rows) + f"  [{timings[kind][width]:.1f} s]")
    return results, timings


def plot(results, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(results)
    fig, axes = plt.subplots(2, len(kinds), figsize=(5.5 * len(kinds), 7.5), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2]}, sharex="col")
    names = {"modc": "modc (muon, digits.mod)", "adamw": "AdamW"}
    for col, kind in enumerate(kinds):
        widths = sorted(results[kind])
        cmap = plt.get_cmap("viridis")
        ax_loss, ax_acc = axes[0][col], axes[1][col]
        for i, width in enumerate(widths):
            rows = results[kind][width]
            color = cmap(i / max(1, len(widths) - 1))
            lr = np.array([r["lr"] for r in rows])
            loss = np.array([r["train_loss"] if math.isfinite(r["train_loss"]) else np.nan for r in rows])
            acc = np.array([100 * r["test_acc"] for r in rows])
            ax_loss.plot(lr, loss, "o-", color=color, ms=3.5, label=f"width {width}")
            if np.isfinite(loss).any():
                b = int(np.nanargmin(loss))
                ax_loss.plot(lr[b], loss[b], "*", color=color, ms=14, mec="black", mew=0.6)
            ax_acc.plot(lr, acc, "o-", color=color, ms=3.5)
        ax_loss.set_xscale("log")
        ax_loss.set_yscale("log")
        ax_loss.set_title(names.get(kind, kind))
        ax_loss.set_ylabel("final training loss")
        ax_acc.set_xscale("log")
        ax_acc.set_ylim(80, 100)
        ax_acc.set_ylabel("test accuracy (%)")
        ax_acc.set_xlabel("learning rate" + (" (of the weight matrices)" if kind == "modc" else ""))
        ax_loss.legend(fontsize=8)
        for ax in (ax_loss, ax_acc):
            ax.grid(alpha=0.3, which="both")
    fig.suptitle(title + "\n(stars: the lowest training loss of each width)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    td.setup_threads(args.threads)
    widths = [int(w) for w in args.widths.split(",") if w.strip()]
    lrs = {k: list(v) for k, v in LRS.items()}
    if args.quick:
        widths, args.epochs = [64, 256], min(args.epochs, 2)
        lrs = {"modc": [0.0464, 0.215, 1.0], "adamw": [0.000464, 0.00464, 0.0464]}
    if args.modc_lrs:
        lrs["modc"] = [float(v) for v in args.modc_lrs.split(",")]
    if args.adamw_lrs:
        lrs["adamw"] = [float(v) for v in args.adamw_lrs.split(",")]
    kinds = [k.strip() for k in args.optimizers.split(",") if k.strip()]
    for k in kinds:
        if k not in LRS:
            sys.exit(f"unknown optimizer {k!r}; choose from modc, adamw")
    if args.plot is None:
        args.plot = "" if args.quick else str(td.DOCS / "training_lr_transfer.png")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; {td.device_note()}")
    data = td.load_data()
    steps = args.epochs * math.ceil(len(data["fit"][0]) / args.batch_size)
    print(f"widths {widths}; {args.epochs} epochs of batch {args.batch_size} ({steps} steps) on "
          f"{len(data['fit'][0])} images, constant lr then linear decay over the last half; {args.seeds} seed(s)")
    start = time.perf_counter()
    results, timings = run(kinds, widths, lrs, data, args.epochs, args.batch_size, args.seeds)
    print(f"total {time.perf_counter() - start:.1f} s")
    for kind in kinds:
        best = {w: min(rows, key=lambda r: r["train_loss"])["lr"] for w, rows in results[kind].items()}
        print(f"{kind}: best lr per width (lowest final training loss): " +
              ", ".join(f"{w}: {lr:g}" for w, lr in best.items()))
    if args.plot:
        plot(results, args.plot, f"digits MLP 64-w-w-10: lr sweep per width, {args.epochs} epochs, batch "
                                 f"{args.batch_size}, {args.seeds} seed(s)")
        print(f"wrote {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": {k: {str(w): v for w, v in r.items()} for k, r in results.items()},
                       "timings": {k: {str(w): v for w, v in t.items()} for k, t in timings.items()}}, f, indent=1)
    return results


if __name__ == "__main__":
    main()
