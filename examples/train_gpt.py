#!/usr/bin/env python3
"""Train a small GPT (examples/gpt.mod) on text, modc's optimizer against AdamW.

    PYTHONPATH=build/python python3 examples/train_gpt.py           # the full run (docs/training.md)
    PYTHONPATH=build/python python3 examples/train_gpt.py --quick   # a short run (seconds)

The network is examples/gpt.mod, modula's GPT (token embedding, L blocks of causal attention
with RoPE and a GELU MLP as residual branches scaled by 1/(2L), no normalisation layers, an
output layer), made small with `set` (vocab, d, heads, L). The PyTorch model below computes
what each of its atoms and bonds means (docs/language.md, section 6), and its parameters map to
the .mod file's weight paths by `weight_path`. modc trains every weight with the file's
`muon` block (momentum, then the network's duality map); AdamW trains the same model from the
same initialisation. Each optimizer gets its best learning rate from a sweep on the same
budget (steps, batch, schedule), scored on a validation split; the final runs at that rate
are scored on a test split, over several seeds.

Data: the Python Language Reference as the Python standard library ships it for pydoc
(pydoc_data/topics.py of the interpreter running this script; on Debian 12 the package
libpython3.11-stdlib, installed with python3): 79 topics, about 466,000 characters of English
with code examples, modelled character by character. The topics, in sorted order, are joined
into one text; its first 90% is trained on, the next 5% is the validation split and the last 5%
the test split.

The model runs on CUDA when torch.cuda.is_available() (--device to choose), on the CPU otherwise.
"""
import argparse
import json
import math
import os
import re
import sys
import time
from pathlib import Path

# Run as a script: one OpenBLAS thread unless told otherwise, set before NumPy and torch load it.
# The matmuls here are small, and on a busy 2-core machine OpenBLAS's threads wait for each
# other: measured here under load, modc's optimizer step took 153 ms with OpenBLAS's default of
# two threads and 9 ms with one, and the forward and backward passes gained too
# (docs/training.md). Imported (by the tests), it leaves the environment alone: processes
# started later inherit it, and OpenBLAS's thread count changes the rounding of their results.
if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import train_digits as td  # noqa: E402  (threads, seeding, the lr schedule, importing modc)

MOD = HERE / "gpt.mod"
DOCS = HERE.parent / "docs"

OPTIMIZERS = ("modc", "adamw")
LABELS = {"modc": "modc (muon, gpt.mod)", "adamw": "AdamW"}
# Log-spaced learning rates swept per optimizer (factors of about 2.15 = 10^(1/3)).
SWEEP = {
    "modc": [0.0464, 0.1, 0.215, 0.464],
    "adamw": [0.00464, 0.01, 0.0215, 0.0464, 0.1],
}
BEST = {"modc": 0.215, "adamw": 0.0215}  # what the full sweep picks (docs/training.md); --quick uses them
CURVE_WINDOWS = 64  # of the validation split's 364 (of 64 characters) for the curve; the final loss takes all
WARMUP = 0.05
SWEEP_TOP = 3.0  # the sweep's chart stops at this loss (nats per character); ln(103) = 4.6 is a uniform guess  # of the steps: the lr rises linearly first (both optimizers), then constant, then decays


# ---------------------------------------------------------------------------------------- data

def load_text():
    """(the file it comes from, the text): the Python Language Reference of pydoc, topics in sorted order."""
    from pydoc_data import topics
    return topics.__file__, "\n\n".join(topics.topics[name] for name in sorted(topics.topics))


def load_data(val=0.05, test=0.05):
    """{'train', 'val', 'test'}: token ids (int64 tensors), 'vocab': the characters, 'source': the file."""
    source, text = load_text()
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    tokens = torch.tensor([index[c] for c in text], dtype=torch.int64)
    n_val, n_test = int(len(tokens) * val), int(len(tokens) * test)
    n_train = len(tokens) - n_val - n_test
    return {"train": tokens[:n_train], "val": tokens[n_train:n_train + n_val], "test": tokens[n_train + n_val:],
            "vocab": vocab, "source": source}


def random_batch(tokens, batch_size, context, generator):
    """Inputs and next-character targets, (batch, context) each, from random windows of tokens."""
    starts = torch.randint(len(tokens) - context, (batch_size,), generator=generator)
    windows = tokens[starts[:, None] + torch.arange(context + 1)]
    return windows[:, :-1], windows[:, 1:]


def all_windows(tokens, context):
    """Every non-overlapping window of a split: (inputs, targets), for the evaluation."""
    n = (len(tokens) - 1) // context
    return tokens[:n * context].view(n, context), tokens[1:n * context + 1].view(n, context)


def some_windows(windows, count):
    """At most `count` of the windows, evenly spaced: the validation curve's (the whole split is slow)."""
    every = max(1, len(windows[0]) // count)
    return windows[0][::every][:count], windows[1][::every][:count]


# --------------------------------------------------------------------------------------- model

def orthogonal_linear(din, dout):
    """A bias-free Linear whose matrix is orthogonal times sqrt(dout/din): RMS -> RMS norm 1, as in modula."""
    layer = nn.Linear(din, dout, bias=False)
    nn.init.orthogonal_(layer.weight)
    with torch.no_grad():
        layer.weight.mul_(math.sqrt(dout / din))
    return layer


class Rope(nn.Module):
    """Rotary position embedding of queries and keys (head size d_head), modula's variant:
    the first half of each head rotates against the second half."""

    def __init__(self, d_head, context, base=10000.0):
        super().__init__()
        half = d_head // 2
        angles = torch.outer(torch.arange(context, dtype=torch.float32), base ** (-torch.arange(half) / half))
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x):  # (batch, heads, T, d_head)
        t, half = x.shape[-2], x.shape[-1] // 2
        cos, sin = self.cos[:t], self.sin[:t]
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([cos * x1 + sin * x2, -sin * x1 + cos * x2], dim=-1)


class Attention(nn.Module):
    """gpt.mod's `attention` branch: o @ MergeHeads @ (1/3) ApplyAttentionScores @ (v, scores)."""

    def __init__(self, d, heads, context):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (orthogonal_linear(d, d) for _ in range(4))
        self.rope = Rope(d // heads, context)
        self.register_buffer("causal", torch.ones(context, context, dtype=torch.bool).tril(), persistent=False)

    def forward(self, x):
        b, t, d = x.shape
        split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731 (SplitIntoHeads)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        q, k = self.rope(q), self.rope(k)
        scores = q @ k.transpose(-2, -1) / q.shape[-1]  # AttentionQK: q.k / d_head (modula's 1/d, not 1/sqrt(d))
        scores = scores.masked_fill(~self.causal[:t, :t], float("-inf")).softmax(-1)  # CausalMask, Softmax(1)
        mixed = (scores @ v) / 3  # (1/3) * ApplyAttentionScores
        return self.o(mixed.transpose(1, 2).reshape(b, t, d))  # MergeHeads, then o


class MLP(nn.Module):
    """gpt.mod's `mlp` branch: down @ GELU @ up, GELU divided by 1.1289 as in modula (sensitivity 1)."""

    def __init__(self, d):
        super().__init__()
        self.up, self.down = orthogonal_linear(d, 4 * d), orthogonal_linear(4 * d, d)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)) / 1.1289)


class Block(nn.Module):
    def __init__(self, d, heads, depth, context):
        super().__init__()
        self.attention, self.mlp, self.depth = Attention(d, heads, context), MLP(d), depth

    def forward(self, x):
        keep, step = 1 - 1 / (2 * self.depth), 1 / (2 * self.depth)  # gpt.mod's `residual(L, branch)`
        x = keep * x + step * self.attention(x)
        return keep * x + step * self.mlp(x)


class GPT(nn.Module):
    """examples/gpt.mod with vocab, d, heads, L set; no biases, no normalisation layers (as modula's GPT).

    The embedding is a (d, vocab) parameter, one column per token, in the .mod file's layout
    (Embed(d, vocab) has shape (d, vocab)), not torch's nn.Embedding (vocab, d): modc writes
    each weight in place through its address, so the parameter itself must be contiguous in
    the layout modc expects; a transposed view of an nn.Embedding weight is not contiguous,
    and a contiguous copy would be updated by modc while the model kept using the original.
    The forward pass reads rows of the transposed view instead (a view: no copy).
    """

    def __init__(self, vocab, d=128, heads=4, depth=2, context=64):
        super().__init__()
        # Each column of RMS 1: the embedding's l1 -> RMS norm is 1, as in modula.
        embed = torch.randn(d, vocab)
        self.embed = nn.Parameter(embed / embed.norm(dim=0, keepdim=True) * math.sqrt(d))
        self.blocks = nn.ModuleList(Block(d, heads, depth, context) for _ in range(depth))
        self.head = orthogonal_linear(d, vocab)

    def forward(self, idx):
        x = F.embedding(idx, self.embed.t())
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def weight_path(name):
    """gpt.mod's weight path of a parameter name: 'blocks.0.attention.q.weight' -> 'blocks[0].block.attention.q'."""
    m = re.fullmatch(r"blocks\.(\d+)\.(attention|mlp)\.(\w+)\.weight", name)
    if m:
        return f"blocks[{m[1]}].block.{m[2]}.{m[3]}"
    return {"embed": "embed", "head.weight": "head"}.get(name)


def network_set(vocab, width, heads, depth):
    """gpt.mod's parameters for this model (modc.torch.Optimizer's `set`, `--set` on the command line)."""
    return {"vocab": vocab, "d": width, "heads": heads, "L": depth}


def make_optimizer(kind, model, lr, vocab, width, heads, depth):
    """modc (gpt.mod's `muon` block on every weight; the model has no other parameters) or AdamW.

    On CUDA parameters modc.torch.Optimizer runs the whole step on the GPU (docs/optimizers.md).
    """
    if kind == "modc":
        mt = td.import_modc()
        return mt.Optimizer(model.named_parameters(), str(MOD), optimizer="muon",
                            set=network_set(vocab, width, heads, depth), rename=weight_path, threads=1, lr=lr)
    if kind == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr)  # weight_decay 0.01, torch's default
    raise ValueError(f"unknown optimizer {kind!r}; choose from {', '.join(OPTIMIZERS)}")


# -------------------------------------------------------------------------------------- training

@torch.no_grad()
def evaluate(model, windows, device, chunk=64):
    """Mean cross-entropy (nats per character) of the model over the windows of a split."""
    inputs, targets = windows
    total = 0.0
    for i in range(0, len(inputs), chunk):
        logits = model(inputs[i:i + chunk].to(device))
        total += F.cross_entropy(logits.flatten(0, 1), targets[i:i + chunk].to(device).flatten(),
                                 reduction="sum").item()
    return total / targets.numel()


def train(kind, lr, data, *, steps=300, batch_size=32, context=64, width=64, heads=4, depth=2, seed=0,
          eval_every=25, curve_windows=None, device="cpu", final_test=True):
    """Trains one model; returns its final validation (and test) loss and its curves.

    Curves: the training loss of every step, and every eval_every steps the loss on
    curve_windows windows of the validation split, with the training time spent so far (the
    model's and the optimizer's, evaluation excluded). The final validation and test losses
    are over the whole splits.
    Deterministic on the CPU given the seed: the initialisation and the batches come from it.
    """
    td.seed_everything(seed)
    vocab = len(data["vocab"])
    model = GPT(vocab, width, heads, depth, context).to(device)
    opt = make_optimizer(kind, model, lr, vocab, width, heads, depth)
    scheds = td.schedulers(opt, steps, warmup=WARMUP)
    batches = torch.Generator().manual_seed(seed)
    val = all_windows(data["val"], context)
    val_curve = some_windows(val, curve_windows or CURVE_WINDOWS)
    history = {"train_loss": [], "eval_step": [], "val_loss": [], "time": []}
    clock, step_times, opt_times, diverged = 0.0, [], [], False
    for step in range(1, steps + 1):
        x, y = (t.to(device) for t in random_batch(data["train"], batch_size, context, batches))
        start = time.perf_counter()
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        before_opt = time.perf_counter()
        opt.step()
        opt_times.append(time.perf_counter() - before_opt)  # (on a GPU: until the step is queued)
        for s in scheds:
            s.step()
        loss = loss.item()  # (waits for the device)
        step_times.append(time.perf_counter() - start)
        clock += step_times[-1]
        history["train_loss"].append(loss)
        if not math.isfinite(loss):
            diverged = True
            break
        if step % eval_every == 0 or step == steps:
            history["eval_step"].append(step)
            history["val_loss"].append(evaluate(model, val_curve, device))
            history["time"].append(clock)
    # The median step: the machine's other work inflates some steps, and the total with them.
    result = {"optimizer": kind, "lr": lr, "seed": seed, "diverged": diverged, "train_s": clock,
              "median_step_s": float(np.median(step_times)), "median_opt_s": float(np.median(opt_times)),
              "history": history,
              "val_loss": math.inf, "test_loss": math.inf}
    if not diverged:
        result["val_loss"] = evaluate(model, val, device)
        if final_test:
            result["test_loss"] = evaluate(model, all_windows(data["test"], context), device)
    return result


# ------------------------------------------------------------------------------------ experiment

def plot(results, sweeps, path, title, labels=LABELS):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_step, ax_time, ax_sweep) = plt.subplots(1, 3, figsize=(16, 4.6))
    colors = {"modc": "tab:red", "adamw": "tab:green"}
    for kind, res in results.items():
        runs, color = res["runs"], colors[kind]
        label = f"{labels[kind]}, lr {res['lr']:g}"
        n = min(len(r["history"]["train_loss"]) for r in runs)
        window = max(1, n // 30)  # a moving average: single batches are noisy
        train = np.array([np.convolve(r["history"]["train_loss"][:n], np.ones(window) / window, "valid")
                          for r in runs]).mean(0)
        ax_step.plot(np.arange(window, n + 1), train, color=color, alpha=0.45, lw=1,
                     label=f"{label}: training (mean of {window} steps)")
        m = min(len(r["history"]["val_loss"]) for r in runs)
        val = np.array([r["history"]["val_loss"][:m] for r in runs])
        steps = runs[0]["history"]["eval_step"][:m]
        ax_step.errorbar(steps, val.mean(0), yerr=val.std(0), color=color, marker="o", ms=3.5, lw=1.8,
                         capsize=2, label=f"{label}: validation ({CURVE_WINDOWS} windows)")
        for i, r in enumerate(runs):
            ax_time.plot(r["history"]["time"][:m], r["history"]["val_loss"][:m], "o-", color=color, ms=3, lw=1.2,
                         alpha=0.85, label=label if i == 0 else None)
        if sweeps.get(kind):
            rows = sweeps[kind]
            lrs = np.array([r["lr"] for r in rows])
            losses = np.array([r["val_loss"] for r in rows])
            # A rate whose loss leaves the chart (it blew up) is drawn on its top edge, as a triangle.
            off = ~(losses < SWEEP_TOP)
            ax_sweep.plot(lrs, np.where(off, SWEEP_TOP, losses), "-", color=color, alpha=0.6)
            ax_sweep.plot(lrs[~off], losses[~off], "o", color=color, label=labels[kind])
            ax_sweep.plot(lrs[off], np.full(off.sum(), SWEEP_TOP), "^", color=color, ms=9,
                          label=f"{labels[kind]}: blew up" if off.any() else None)
            ax_sweep.plot(res["lr"], losses.min(), "*", color=color, ms=15, mec="black", mew=0.6)
    ax_step.set_xlabel("step")
    ax_step.set_ylabel("loss (nats per character)")
    ax_step.legend(fontsize=7.5)
    ax_time.set_xlabel("training time (s; evaluation excluded)")
    ax_time.set_ylabel("validation loss (nats per character)")
    ax_time.legend(fontsize=8)
    ax_sweep.set_xscale("log")
    ax_sweep.set_ylim(top=SWEEP_TOP + 0.05)
    ax_sweep.set_xlabel("learning rate (modc: of gpt.mod's muon block; AdamW: its own)")
    ax_sweep.set_ylabel("final validation loss")
    ax_sweep.set_title("the sweep (star: the rate chosen)", fontsize=10)
    ax_sweep.legend(fontsize=8)
    top = max(r["history"]["val_loss"][0] for res in results.values() for r in res["runs"])
    for ax in (ax_step, ax_time):
        ax.set_ylim(top=min(top * 1.05, 4.0))
    for ax in (ax_step, ax_time, ax_sweep):
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300, help="training steps of every run (default 300)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per step (default 32)")
    p.add_argument("--context", type=int, default=64, help="characters per sequence (default 64)")
    p.add_argument("--width", type=int, default=64, help="d, the model width (default 64)")
    p.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    p.add_argument("--depth", type=int, default=2, help="L, the number of blocks (default 2)")
    p.add_argument("--seeds", type=int, default=3, help="seeds of the final runs (default 3)")
    p.add_argument("--sweep-seeds", type=int, default=1, help="seeds per learning rate in the sweep (default 1)")
    p.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="comma-separated subset of modc,adamw")
    p.add_argument("--lr", action="append", default=[], metavar="OPT=LR",
                   help="skip the sweep of OPT and use LR (repeatable), e.g. --lr modc=0.2")
    p.add_argument("--modc-lrs", default="", help="comma-separated learning rates of modc's sweep")
    p.add_argument("--adamw-lrs", default="", help="comma-separated learning rates of AdamW's sweep")
    p.add_argument("--eval-every", type=int, default=25, help="steps between validation losses (default 25)")
    p.add_argument("--quick", action="store_true",
                   help="a short run: 30 steps, 1 seed, no sweep (the rates of docs/training.md)")
    p.add_argument("--device", default="", help="cpu or cuda (default: cuda if torch.cuda.is_available())")
    p.add_argument("--plot", default=None,
                   help="where to save the figure ('' for none; default docs/training_gpt.png, none with --quick)")
    p.add_argument("--json", default="", help="write the results as JSON to this file")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    td.setup_threads(args.threads)
    kinds = [k.strip() for k in args.optimizers.split(",") if k.strip()]
    for k in kinds:
        if k not in OPTIMIZERS:
            sys.exit(f"unknown optimizer {k!r}; choose from {', '.join(OPTIMIZERS)}")
    grids = {k: list(v) for k, v in SWEEP.items()}
    for k, flag in (("modc", args.modc_lrs), ("adamw", args.adamw_lrs)):
        if flag:
            grids[k] = [float(v) for v in flag.split(",")]
    fixed = {}
    for item in args.lr:
        k, _, v = item.partition("=")
        fixed[k] = float(v)
    if args.quick:
        args.steps, args.seeds, args.eval_every = min(args.steps, 30), 1, 10
        fixed = {**BEST, **fixed}
    if args.plot is None:
        args.plot = "" if args.quick else str(DOCS / "training_gpt.png")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    data = load_data()
    vocab = len(data["vocab"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
          f"device {device}")
    print(f"text: {data['source']}: {vocab} characters; {len(data['train'])} train / {len(data['val'])} "
          f"validation / {len(data['test'])} test")
    print(f"model: gpt.mod with vocab {vocab}, d {args.width}, heads {args.heads}, L {args.depth}; context "
          f"{args.context}; {args.steps} steps of batch {args.batch_size}, warmup {WARMUP:.0%}, constant lr, linear "
          f"decay to 0 over the last half")
    kw = dict(steps=args.steps, batch_size=args.batch_size, context=args.context, width=args.width, heads=args.heads,
              depth=args.depth, eval_every=args.eval_every, device=device)
    runs = {}  # (kind, lr, seed) -> run: a final run with a sweep's seed is that run (deterministic)

    def run(kind, lr, seed):
        if (kind, lr, seed) not in runs:
            r = train(kind, lr, data, seed=seed, **kw)
            runs[kind, lr, seed] = r
            print(f"  {kind:5s} lr {lr:<8g} seed {seed}: validation {r['val_loss']:.4f}, test {r['test_loss']:.4f} "
                  f"nats/char ({r['train_s']:.1f} s of training; median step {1e3 * r['median_step_s']:.1f} ms, "
                  f"its optimizer step {1e3 * r['median_opt_s']:.2f} ms)",
                  flush=True)
        return runs[kind, lr, seed]

    best, sweeps = {}, {}
    start = time.perf_counter()
    for kind in kinds:
        if kind in fixed:
            best[kind], sweeps[kind] = fixed[kind], []
        else:
            print(f"{LABELS[kind]}: sweep over {len(grids[kind])} learning rates, {args.sweep_seeds} seed(s) each")
            rows = []
            for rate in grids[kind]:
                sweep_runs = [run(kind, rate, s) for s in range(args.sweep_seeds)]
                rows.append({"lr": rate, "val_loss": float(np.mean([r["val_loss"] for r in sweep_runs]))})
            best[kind] = min(rows, key=lambda r: r["val_loss"])["lr"]
            sweeps[kind] = rows
            if best[kind] in (grids[kind][0], grids[kind][-1]):
                print(f"  (the best rate, {best[kind]:g}, is at the edge of the grid: widen it with --{kind}-lrs)")
    # The final runs take turns, seed by seed, so that a busy spell of the machine hits both alike.
    print("final runs: " + ", ".join(f"{LABELS[k]} at lr {best[k]:g}" for k in kinds))
    finals = {k: [] for k in kinds}
    for seed in range(args.seeds):
        for kind in kinds:
            finals[kind].append(run(kind, best[kind], seed))
    results = {}
    for kind, final in finals.items():
        tests = np.array([r["test_loss"] for r in final])
        results[kind] = {"lr": best[kind], "sweep": sweeps[kind], "runs": final, "test_mean": float(tests.mean()),
                         "test_std": float(tests.std()), "train_s": float(np.mean([r["train_s"] for r in final])),
                         "median_step_s": float(np.median([r["median_step_s"] for r in final])),
                         "median_opt_s": float(np.median([r["median_opt_s"] for r in final]))}
    total = time.perf_counter() - start
    print(f"\n| optimizer | lr (from the sweep) | test loss, mean ± std over {args.seeds} seed(s) | the seeds | "
          f"training time per run | median step (its optimizer step) |")
    print("|---|---|---|---|---|---|")
    for kind, res in results.items():
        seeds = ", ".join(f"{r['test_loss']:.4f}" for r in res["runs"])
        print(f"| {LABELS[kind]} | {res['lr']:g} | {res['test_mean']:.4f} ± {res['test_std']:.4f} | {seeds} | "
              f"{res['train_s']:.1f} s | {1e3 * res['median_step_s']:.1f} ms ({1e3 * res['median_opt_s']:.2f} ms) |")
    for kind, rows in sweeps.items():
        if rows:
            print(f"\n| {kind} lr | " + " | ".join(f"{r['lr']:g}" for r in rows) + " |")
            print("|---|" + "---|" * len(rows))
            print("| val. loss | " + " | ".join(f"{r['val_loss']:.4f}" if r["val_loss"] < 10 else
                                                 f"{r['val_loss']:.2g} (blew up)" for r in rows) + " |")
    print(f"\ntotal {total:.1f} s ({len(runs)} trainings)")
    if args.plot:
        plot(results, sweeps, args.plot,
             f"character-level GPT (gpt.mod, d {args.width}, {args.heads} heads, L {args.depth}) on the Python "
             f"Language Reference: {args.steps} steps of {args.batch_size} x {args.context} characters, "
             f"{args.seeds} seed(s)")
        print(f"wrote {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "sweeps": sweeps, "total_s": total, "args": vars(args)}, f, indent=1)
    return results


if __name__ == "__main__":
    main()
