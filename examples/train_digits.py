#!/usr/bin/env python3
"""Train an MLP on scikit-learn's digits with modc's optimizer against SGD and AdamW.

    PYTHONPATH=build/python python3 examples/train_digits.py            # the full run (docs/training.md)
    PYTHONPATH=build/python python3 examples/train_digits.py --quick    # a short run (seconds)

The network 64 -> width -> width -> 10 (ReLU) is described in examples/digits.mod, whose
optimizer block (`muon`: momentum, then the network's duality map) trains its three weight
matrices through modc.torch.Optimizer; the biases go to the fallback optimizer (AdamW).
It is compared with SGD with momentum and with AdamW, each at its best learning rate from a
sweep on a validation split, under the same budget (epochs, batch size, schedule), over
several seeds.

Data: sklearn.datasets.load_digits (1797 images of 8 x 8 pixels, shipped with scikit-learn:
no download). A fixed stratified split holds out 20% for test; of the rest, 20% is the
validation split of the sweep. The sweep trains on the other 80% and picks, per optimizer,
the learning rate with the best mean validation accuracy (ties: lowest validation loss).
The final runs train on the whole training part (train + validation) with that learning
rate, one run per seed, and report the test accuracy, mean +- std over seeds.

The model stays on the CPU even where CUDA is available, and the script says so: this MLP is
so small (64 -> 128 -> 10) that a GPU would spend its time launching kernels, and the committed
figures stay comparable. (modc.torch.Optimizer itself runs on CUDA parameters: train_gpt.py.)
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
from torch import nn

HERE = Path(__file__).resolve().parent
MOD = HERE / "digits.mod"
DOCS = HERE.parent / "docs"

OPTIMIZERS = ("modc", "sgd", "adamw")
LABELS = {"modc": "modc (muon, digits.mod)", "sgd": "SGD + momentum 0.9", "adamw": "AdamW"}
# Log-spaced learning rates swept per optimizer (factors of about 2.15 = 10^(1/3)).
SWEEP = {
    "modc": [0.00464, 0.01, 0.0215, 0.0464, 0.1, 0.215, 0.464],
    "sgd": [0.001, 0.00215, 0.00464, 0.01, 0.0215, 0.0464, 0.1, 0.215],
    "adamw": [0.0001, 0.000215, 0.000464, 0.001, 0.00215, 0.00464, 0.01, 0.0215],
}
BIAS_LR = 0.01  # AdamW on the biases, modc's fallback (the weights' lr is the one swept)


def import_modc():
    """modc.torch, or a message that says how to make it importable."""
    try:
        import modc.torch
        return modc.torch
    except ImportError as e:
        sys.exit(f"cannot import modc ({e}): build it (cmake --build build) and run with PYTHONPATH=build/python")


def setup_threads(threads=1):
    """One thread for PyTorch: on a 2-core machine its OpenMP threads fight OpenBLAS's."""
    torch.set_num_threads(threads)


def device_note():
    """What runs where: the model stays on the CPU (see the module's docstring)."""
    if torch.cuda.is_available():
        return ("CUDA is available, but this MLP is too small to gain from it: the model and every optimizer run "
                "on the CPU, as in the committed figures")
    return "CPU only"


# ---------------------------------------------------------------------------------------- data

def load_data(test_size=0.2, val_size=0.2, split_seed=0):
    """The digits as float32 tensors: {'train', 'val', 'fit', 'test'} -> (x, y).

    'fit' = 'train' + 'val' (what the final runs train on). Features are centred per pixel and
    divided by one overall standard deviation, both from the part trained on (per-pixel
    deviations would blow up the border pixels that are almost always 0), so that inputs have
    RMS 1. The split is fixed (split_seed), whatever the run's seed.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    x_fit, x_test, y_fit, y_test = train_test_split(x, y, test_size=test_size, stratify=y, random_state=split_seed)
    x_train, x_val, y_train, y_val = train_test_split(x_fit, y_fit, test_size=val_size, stratify=y_fit,
                                                      random_state=split_seed)

    def standardise(ref, *parts):
        mean = ref.mean(0)
        std = (ref - mean).std()
        return [torch.from_numpy((p - mean) / std) for p in parts]

    def labels(*ys):
        return [torch.from_numpy(v.astype(np.int64)) for v in ys]

    sweep_x = standardise(x_train, x_train, x_val)
    fit_x = standardise(x_fit, x_fit, x_test)
    sweep_y, fit_y = labels(y_train, y_val), labels(y_fit, y_test)
    return {"train": (sweep_x[0], sweep_y[0]), "val": (sweep_x[1], sweep_y[1]),
            "fit": (fit_x[0], fit_y[0]), "test": (fit_x[1], fit_y[1])}


# --------------------------------------------------------------------------------------- model

class MLP(nn.Module):
    """64 -> width -> width -> 10 with ReLU; the attributes are named as digits.mod's weights."""

    def __init__(self, width=128, pixels=64, classes=10):
        super().__init__()
        self.input = nn.Linear(pixels, width)
        self.hidden = nn.Linear(width, width)
        self.output = nn.Linear(width, classes)
        # Every optimizer starts from the same initialisation: each matrix orthogonal, times
        # sqrt(dout/din), so that its RMS -> RMS norm (the one digits.mod gives it) is 1, as
        # in modula; biases zero.
        for layer in (self.input, self.hidden, self.output):
            dout, din = layer.weight.shape
            nn.init.orthogonal_(layer.weight)
            with torch.no_grad():
                layer.weight.mul_(math.sqrt(dout / din))
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        return self.output(torch.relu(self.hidden(torch.relu(self.input(x)))))


def weight_path(name):
    """digits.mod's weight path of a parameter name ('hidden.weight' -> 'hidden'); None for the biases."""
    return name[: -len(".weight")] if name.endswith(".weight") else None


def make_optimizer(kind, model, lr, width=128, modc_optimizer="muon", wd=None):
    """The optimizer `kind` (modc, sgd, adamw) over the model's parameters, at learning rate lr."""
    if kind == "modc":
        mt = import_modc()
        hyper = {} if wd is None else {"wd": wd}
        return mt.Optimizer(model.named_parameters(), str(MOD), optimizer=modc_optimizer, set={"width": width},
                            rename=weight_path, threads=1, lr=lr,
                            fallback=lambda ps: torch.optim.AdamW(ps, lr=BIAS_LR, weight_decay=0.0), **hyper)
    if kind == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if kind == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr)  # weight_decay 0.01, torch's default
    raise ValueError(f"unknown optimizer {kind!r}; choose from {', '.join(OPTIMIZERS)}")


def schedulers(opt, total_steps, warmdown=0.5, warmup=0.0):
    """Constant lr, then linear decay to 0 over the last `warmdown` of the steps (the fallback's too).

    warmup: a fraction of the steps over which the lr first rises linearly from 0 (train_gpt.py).
    """
    def factor(step):
        start = (1 - warmdown) * total_steps
        if step < warmup * total_steps:
            return (step + 1) / (warmup * total_steps)
        return 1.0 if step < start else max(0.0, (total_steps - step) / (total_steps - start))

    opts = [opt] + ([opt.fallback] if getattr(opt, "fallback", None) is not None else [])
    return [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in opts]


@torch.no_grad()
def evaluate(model, x, y):
    """(mean cross-entropy, accuracy) of the model on (x, y)."""
    logits = model(x)
    return nn.functional.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def seed_everything(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


def train(kind, lr, data, *, train_part="fit", eval_part="test", epochs=30, batch_size=64, seed=0, width=128,
          modc_optimizer="muon", wd=None, curves=True):
    """Trains one model; returns a dict with the final eval loss and accuracy, and per-epoch curves.

    The run is deterministic given the seed: the initialisation and the batch order come from
    torch generators seeded with it (modc's step is deterministic).
    """
    seed_everything(seed)
    x, y = data[train_part]
    xe, ye = data[eval_part]
    model = MLP(width)
    opt = make_optimizer(kind, model, lr, width, modc_optimizer, wd)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    scheds = schedulers(opt, epochs * steps_per_epoch)
    order = torch.Generator().manual_seed(seed)
    history = {"train_loss": [], "eval_loss": [], "eval_acc": []}
    diverged = False
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=order)
        total, count = 0.0, 0
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            for s in scheds:
                s.step()
            total, count = total + loss.item() * len(idx), count + len(idx)
        history["train_loss"].append(total / count)
        if not math.isfinite(total):
            diverged = True
            break
        if curves:
            el, ea = evaluate(model, xe, ye)
            history["eval_loss"].append(el)
            history["eval_acc"].append(ea)
    loss, acc = (float("nan"), 0.0) if diverged else evaluate(model, xe, ye)
    final_train = float("nan") if diverged else evaluate(model, x, y)[0]
    # train_loss: the mean over the last epoch's batches; final_train_loss: the trained model
    # on the whole training part.
    return {"optimizer": kind, "lr": lr, "seed": seed, "eval_loss": loss, "eval_acc": acc,
            "train_loss": history["train_loss"][-1], "final_train_loss": final_train, "diverged": diverged,
            "history": history}


# --------------------------------------------------------------------------------- experiment

def sweep(kind, lrs, data, seeds, **kw):
    """Mean validation accuracy and loss per learning rate; the best lr (accuracy, then loss)."""
    rows = []
    for lr in lrs:
        runs = [train(kind, lr, data, train_part="train", eval_part="val", seed=s, curves=False, **kw) for s in seeds]
        acc = float(np.mean([r["eval_acc"] for r in runs]))
        loss = float(np.mean([r["eval_loss"] for r in runs])) if not any(r["diverged"] for r in runs) else math.inf
        rows.append({"lr": lr, "val_acc": acc, "val_loss": loss})
    best = max(rows, key=lambda r: (round(r["val_acc"], 6), -r["val_loss"]))
    return rows, best["lr"]


def plot(results, path, title, labels=LABELS):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"modc": "tab:red", "sgd": "tab:blue", "adamw": "tab:green"}
    for kind, res in results.items():
        runs = res["runs"]
        n = min(len(r["history"]["train_loss"]) for r in runs)
        epochs = np.arange(1, n + 1)
        for ax, key, scale in ((ax_loss, "train_loss", 1.0), (ax_acc, "eval_acc", 100.0)):
            v = np.array([r["history"][key][:n] for r in runs]) * scale
            m, s = v.mean(0), v.std(0)
            label = f"{labels[kind]}, lr {res['lr']:g}"
            ax.plot(epochs, m, color=colors[kind], label=label)
            ax.fill_between(epochs, m - s, m + s, color=colors[kind], alpha=0.2)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (cross-entropy, epoch mean)")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.set_ylim(90, 100)
    ax_acc.legend(loc="lower right")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=30, help="epochs of every run (default 30)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size of every run (default 64)")
    p.add_argument("--width", type=int, default=128, help="hidden width (default 128)")
    p.add_argument("--seeds", type=int, default=3, help="seeds of the final runs (default 3)")
    p.add_argument("--sweep-seeds", type=int, default=3, help="seeds per learning rate in the sweep (default 3)")
    p.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="comma-separated subset of modc,sgd,adamw")
    p.add_argument("--modc-optimizer", default="muon", help="the optimizer block of digits.mod (muon, muon_wd)")
    p.add_argument("--lr", action="append", default=[], metavar="OPT=LR",
                   help="skip the sweep of OPT and use LR (repeatable), e.g. --lr modc=0.2")
    p.add_argument("--quick", action="store_true",
                   help="a short run: 10 epochs, 1 seed, no sweep (the learning rates of docs/training.md)")
    p.add_argument("--plot", default=None,
                   help="where to save the figure ('' for none; default docs/training_digits.png, none with --quick)")
    p.add_argument("--json", default="", help="write the results as JSON to this file")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    return p.parse_args(argv)


# The learning rates the full sweep picks (docs/training.md); --quick uses them.
BEST = {"modc": 0.0215, "sgd": 0.0464, "adamw": 0.00464}


def main(argv=None):
    args = parse_args(argv)
    setup_threads(args.threads)
    kinds = [k.strip() for k in args.optimizers.split(",") if k.strip()]
    for k in kinds:
        if k not in OPTIMIZERS:
            sys.exit(f"unknown optimizer {k!r}; choose from {', '.join(OPTIMIZERS)}")
    fixed = {}
    for item in args.lr:
        k, _, v = item.partition("=")
        fixed[k] = float(v)
    if args.quick:
        args.epochs, args.seeds = min(args.epochs, 10), 1
        fixed = {**BEST, **fixed}
    if args.plot is None:
        args.plot = "" if args.quick else str(DOCS / "training_digits.png")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; {device_note()}")
    data = load_data()
    print(f"digits: {len(data['train'][0])} train / {len(data['val'][0])} validation for the sweep; "
          f"{len(data['fit'][0])} train / {len(data['test'][0])} test for the final runs")
    print(f"budget: {args.epochs} epochs, batch {args.batch_size}, width {args.width}, "
          f"constant lr then linear decay to 0 over the last half")
    labels = {**LABELS, "modc": f"modc ({args.modc_optimizer}, digits.mod)"}
    kw = dict(epochs=args.epochs, batch_size=args.batch_size, width=args.width, modc_optimizer=args.modc_optimizer)
    results = {}
    start = time.perf_counter()
    for kind in kinds:
        t0 = time.perf_counter()
        if kind in fixed:
            lr, rows = fixed[kind], []
        else:
            rows, lr = sweep(kind, SWEEP[kind], data, range(100, 100 + args.sweep_seeds), **kw)
            print(f"\n{labels[kind]}: sweep (validation accuracy, mean over {args.sweep_seeds} seeds)")
            for r in rows:
                mark = "  <- best" if r["lr"] == lr else ""
                print(f"  lr {r['lr']:<9g} acc {100 * r['val_acc']:6.2f}%  loss {r['val_loss']:.4f}{mark}")
        t1 = time.perf_counter()
        runs = [train(kind, lr, data, seed=s, **kw) for s in range(args.seeds)]
        t2 = time.perf_counter()
        accs = np.array([r["eval_acc"] for r in runs]) * 100
        results[kind] = {"lr": lr, "sweep": rows, "runs": runs, "acc_mean": float(accs.mean()),
                         "acc_std": float(accs.std()), "sweep_s": t1 - t0, "final_s": t2 - t1}
        print(f"{labels[kind]}: lr {lr:g}, test accuracy {accs.mean():.2f} +- {accs.std():.2f}% over {args.seeds} "
              f"seed(s) ({', '.join(f'{a:.2f}' for a in accs)}); sweep {t1 - t0:.1f} s, "
              f"final runs {t2 - t1:.1f} s ({(t2 - t1) / len(runs):.2f} s per run)")
    total = time.perf_counter() - start
    print(f"\n| optimizer | lr | test accuracy (mean +- std, {args.seeds} seeds) |")
    print("|---|---|---|")
    for kind, res in results.items():
        print(f"| {labels[kind]} | {res['lr']:g} | {res['acc_mean']:.2f} +- {res['acc_std']:.2f}% |")
    print(f"total {total:.1f} s")
    if args.plot:
        plot(results, args.plot, f"digits MLP 64-{args.width}-{args.width}-10, {args.epochs} epochs, batch "
                                 f"{args.batch_size}, mean +- std over {args.seeds} seed(s)", labels)
        print(f"wrote {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: {kk: vv for kk, vv in v.items()} for k, v in results.items()}, f, indent=1)
    return results


if __name__ == "__main__":
    main()
