#!/usr/bin/python3
"""modc against its peers on the GPT-2 small blocks: interleaved, each at its best threads, against the machine.

Peers, all running 5 Newton-Schulz steps with the Muon coefficients on every weight:
  NumPy f32             the iteration on OpenBLAS
  PyTorch f32           Keller Jordan's zeropower_via_newtonschulz5, in float32, per parameter
  PyTorch bf16          the same function as Muon ships it: bfloat16 (oneDNN matmuls on the CPU)
  modc f32              `modc bench` (JIT kernels + OpenBLAS): Muon direct (--no-gram), Muon with
                        all of modc's choices, and Polar Express (modc's default schedule)
  modc bf16             the same with `--precision bf16`, included when this modc accepts it

Method. Every candidate runs in a process of its own that stays warm (NumPy and PyTorch: a worker
of this script; modc: one `modc bench --runs 1 --warmup 1` per round). First every thread setting
of every peer (1 to the number of cores; for PyTorch its OpenMP threads x OpenBLAS's threads) is
timed over a few interleaved rounds, and each peer keeps its fastest. Then the kept candidates run
once per round, in a shuffled order, for --rounds rounds, with oneDNN's large-GEMM rate
(build/bench/gemm_rate) measured in every round too; the tables give medians over the rounds. The
load average is recorded before and after every round, with the kernels in use (modc's kernel
plan, BLAS and oneDNN versions, OPENBLAS_CORETYPE).

Columns. "flops done": what the row actually computes (peers: 4 m^2 n + 2 m^3 per step; modc:
`modc bench --json`'s count, symmetric products and Gram iterations counted as done). "x machine
limit": the row's time over the machine limit, the fewest flops a modc plan needs for the network
at oneDNN's large-GEMM rate in the row's precision (1.00x would be perfect). "vs fastest peer":
the fastest non-modc row's time over the row's. Accuracy: the largest ||X - U V^T||_2 against the
SVD over the three largest weights.

Usage: bench/run.py [--modc build/modc] [--rounds 9] [--select-rounds 2] [--out docs/performance]
       bench/run.py --replot     # redraw OUT.png and reprint the tables from OUT.json
"""
import argparse
import ctypes
import datetime
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from muon import MUON, zeropower_via_newtonschulz5

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MOD = os.path.join(HERE, "gpt2_blocks.mod")
TITLES = {"gpt2_blocks": "GPT-2 small blocks (per layer Q, K, V, O 768x768, MLP 3072x768 and 768x3072)",
          "small_mlp": "small MLP (512 x 784, 512 x 512, 10 x 512)"}


# ---------------------------------------------------------------------------------------------
# The peers' iterations, run in worker processes

def numpy_ns(g, steps=5, eps=1e-7):
    x = g / (np.linalg.norm(g) + eps)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    a, b, c = MUON
    for _ in range(steps):
        A = x @ x.T
        B = b * A + c * (A @ A)
        x = a * x + B @ x
    return x.T if tall else x


def spectral_error(x, g):
    u, _, vt = np.linalg.svd(g.astype(np.float64), full_matrices=False)
    return float(np.linalg.norm(x.astype(np.float64) - u @ vt, 2))


def worker(kind, grads_dir, torch_threads):
    """Loads the gradients, runs once, says "ready", then answers lines on stdin: `time` (seconds
    of one pass over every weight), `error` (max spectral error over the three largest), `info`."""
    names = sorted(f[:-4] for f in os.listdir(grads_dir) if f.endswith(".npy"))
    grads = [np.load(os.path.join(grads_dir, n + ".npy")) for n in names]
    if kind == "numpy":
        run = lambda: [numpy_ns(g) for g in grads]
        outputs = lambda: run()
        info = {"numpy": np.__version__}
    else:
        import torch
        torch.set_num_threads(torch_threads)
        dtype = torch.float32 if kind == "torch-f32" else torch.bfloat16
        tensors = [torch.from_numpy(g) for g in grads]

        def run():
            with torch.no_grad():
                return [zeropower_via_newtonschulz5(t, dtype=dtype) for t in tensors]
        outputs = lambda: [x.float().numpy() for x in run()]
        info = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                "mkldnn": torch.backends.mkldnn.is_available(),
                "blas": next((l.strip() for l in torch.__config__.show().split(",") if "BLAS_INFO" in l), "")}
    run()  # warm-up
    print(json.dumps("ready"), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "time":
            start = time.perf_counter()
            run()
            reply = time.perf_counter() - start
        elif command == "error":
            order = sorted(range(len(grads)), key=lambda i: -grads[i].size)[:3]
            xs = outputs()
            reply = max(spectral_error(xs[i], grads[i]) for i in order)
        elif command == "info":
            reply = info
        else:
            break
        print(json.dumps(reply), flush=True)


# ---------------------------------------------------------------------------------------------
# Candidates: one peer at one thread setting

class PythonCandidate:
    """A NumPy or PyTorch peer in a warm worker process."""

    def __init__(self, peer, kind, grads_dir, blas_threads, torch_threads=None):
        self.peer, self.kind, self.precision = peer, kind, "bf16" if kind == "torch-bf16" else "f32"
        self.threads = {"openblas": blas_threads}
        if torch_threads is not None:
            self.threads["torch"] = torch_threads
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(torch_threads or 1))
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", kind, "--grads", grads_dir,
                                      "--torch-threads", str(torch_threads or 1)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.flops = None  # set by the caller: the naive count
        if self.proc.stdout.readline().strip() != '"ready"':  # warm, before the next one starts
            sys.exit("the %s worker failed to start" % self.label())

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            sys.exit("the %s worker died" % self.label())
        return json.loads(line)

    def time(self):
        return self.ask("time")

    def label(self):
        return "%s (%s)" % (self.peer, ", ".join("%s %d" % kv for kv in self.threads.items()))

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()


class ModcCandidate:
    """`modc bench` at one setting: each time() is one process, compile and a warm-up run
    before the timed run."""

    def __init__(self, peer, modc, network, schedule, flags, threads, sets=()):
        self.peer, self.modc, self.network, self.sets = peer, modc, network, list(sets)
        self.schedule, self.flags = schedule, list(flags)
        self.precision = "bf16" if "bf16" in self.flags else "f32"
        self.threads = {"modc": threads}
        self.flops = None
        self.compile_seconds = []  # .mod to a ready dualizer, per round

    def args(self):
        return ["--network", self.network, *self.sets, "--schedule", self.schedule, "--threads",
                str(self.threads["modc"]), *self.flags]

    def time(self):
        report = json.loads(subprocess.run([self.modc, "bench", MOD, *self.args(), "--runs", "1", "--warmup", "1",
                                            "--json"], check=True, capture_output=True, text=True).stdout)
        self.flops = report["flops"]
        self.compile_seconds.append(report["compile_seconds"])
        return report["median_seconds"]

    def label(self):
        return "%s (modc threads %d)" % (self.peer, self.threads["modc"])

    def close(self):
        pass


def modc_error(c, grads_dir, names, scales, workdir):
    out = os.path.join(workdir, "u_" + c.peer.replace(" ", "_").replace(",", ""))
    subprocess.run([c.modc, "dualize", MOD, "--in", grads_dir, "--out", out, *c.args()], check=True)
    order = sorted(names, key=lambda n: -np.load(os.path.join(grads_dir, n + ".npy"), mmap_mode="r").size)[:3]
    return max(spectral_error(np.load(os.path.join(out, n + ".npy")) / scales[n],
                              np.load(os.path.join(grads_dir, n + ".npy"))) for n in order)


# ---------------------------------------------------------------------------------------------
# The run

def naive_flops(shapes, steps=5):
    """4 m^2 n + 2 m^3 per Newton-Schulz step, m <= n: what the NumPy and PyTorch peers compute."""
    return sum(steps * (4.0 * min(s) ** 2 * max(s) + 2.0 * min(s) ** 3) for s in shapes)


def thread_settings():
    cores = os.cpu_count() or 1
    return sorted({t for t in (1, 2, 4, 8, 16, 32, 64) if t <= cores} | {cores})


def modc_accepts(modc, flags):
    done = subprocess.run([modc, "bench", MOD, "--network", "small_mlp", "--runs", "1", "--warmup", "0", *flags],
                          capture_output=True, text=True)
    return done.returncode == 0, done.stderr.strip()


def gemm_rate(path):
    if not os.path.exists(path):
        return None
    return json.loads(subprocess.run([path, "--size", "3072", "--runs", "3"], check=True, capture_output=True,
                                     text=True).stdout)


def interleave(candidates, rounds, rng, log, gemm=None):
    """Each candidate once per round, in a shuffled order; the load average around every round."""
    times = {id(c): [] for c in candidates}
    record = []
    for r in range(rounds):
        order = list(candidates)
        rng.shuffle(order)
        entry = {"load_before": os.getloadavg()[0], "order": [c.label() for c in order]}
        if gemm:
            entry["gemm"] = gemm_rate(gemm)
        for c in order:
            times[id(c)].append(c.time())
        entry["load_after"] = os.getloadavg()[0]
        record.append(entry)
        log("  round %d/%d: load %.2f -> %.2f" % (r + 1, rounds, entry["load_before"], entry["load_after"]))
    return times, record


def spread(values):
    return {"median_s": statistics.median(values), "p10_s": float(np.percentile(values, 10)),
            "p90_s": float(np.percentile(values, 90)), "times_s": values}


def run_network(args, network, workdir, log):
    modc = args.modc
    sets = [a for s in args.set for a in ("--set", s)]
    explain = json.loads(subprocess.run([modc, "explain", MOD, "--network", network, *sets, "--json"], check=True,
                                        capture_output=True, text=True).stdout)
    names = [leaf["path"] for leaf in explain["leaves"]]
    shapes = [tuple(leaf["shape"]) for leaf in explain["leaves"]]
    scales = {leaf["path"]: leaf["scale_value"] for leaf in explain["leaves"]}
    grads_dir = os.path.join(workdir, "g_" + network)
    os.makedirs(grads_dir)
    rng = np.random.default_rng(2024)
    for name, shape in zip(names, shapes):
        np.save(os.path.join(grads_dir, name + ".npy"), rng.standard_normal(shape, dtype=np.float32))

    # Every peer at every thread setting; modc's variants share one thread choice (Muon's).
    threads = thread_settings()
    python_peers = [("NumPy f32", "numpy"), ("PyTorch f32", "torch-f32"), ("PyTorch bf16", "torch-bf16")]
    try:
        import torch  # noqa: F401
    except ImportError:
        log("python3-torch is not installed: the PyTorch peers are left out")
        python_peers = python_peers[:1]
    modc_variants = [("modc f32, muon, direct", "muon", ["--no-gram"]), ("modc f32, muon", "muon", []),
                     ("modc f32, polar-express", "polar-express", [])]
    bf16, why = modc_accepts(modc, ["--precision", "bf16"])
    if bf16:
        modc_variants += [("modc bf16, muon", "muon", ["--precision", "bf16"]),
                          ("modc bf16, polar-express", "polar-express", ["--precision", "bf16"])]
    else:
        log("modc bf16 left out: " + why)

    selection = []
    chosen = []
    # Made when their turn comes: a worker loads the gradients and warms up as it starts.
    for peer, kind in python_peers:
        settings = [(b, None) for b in threads] if kind == "numpy" else [(b, t) for t in threads for b in threads]
        selection.append(lambda peer=peer, kind=kind, settings=settings:
                         [PythonCandidate(peer, kind, grads_dir, b, t) for b, t in settings])
    for peer, schedule, flags in modc_variants:
        selection.append(lambda peer=peer, schedule=schedule, flags=flags:
                         [ModcCandidate(peer, modc, network, schedule, flags, t, sets) for t in threads])
    # One peer at a time, its settings interleaved, so that few workers hold gradients at once.
    threads_table, select_record = [], []
    for make_group in selection:
        group = make_group()
        log("%s: choosing threads of %s, %d settings x %d rounds" % (network, group[0].peer, len(group),
                                                                      args.select_rounds))
        times, record = interleave(group, args.select_rounds, random.Random(1), log)
        select_record += record
        for c in group:
            threads_table.append({"peer": c.peer, "threads": c.threads, "median_s": statistics.median(times[id(c)])})
        best = min(group, key=lambda c: statistics.median(times[id(c)]))
        chosen.append(best)
        for c in group:
            if c is not best:
                c.close()

    log("%s: %d rounds of the %d chosen" % (network, args.rounds, len(chosen)))
    times, round_record = interleave(chosen, args.rounds, random.Random(2), log, gemm=args.gemm_rate)
    rates = {}
    for precision in ("f32", "bf16"):
        per_round = [r["gemm"][precision]["best_gflops"] for r in round_record if r.get("gemm") and r["gemm"].get(precision)]
        rates[precision] = statistics.median(per_round) if per_round else None
    # The fewest flops a modc plan needs: the least over modc's rows (all run the same 5 steps).
    modc_rows = [c for c in chosen if isinstance(c, ModcCandidate)]
    fewest = min(c.flops for c in modc_rows)
    rows = []
    for c in chosen:
        flops = c.flops if isinstance(c, ModcCandidate) else naive_flops(shapes)
        if isinstance(c, PythonCandidate):
            error = c.ask("error")
            info = c.ask("info")
        else:
            error = modc_error(c, grads_dir, names, scales, workdir)
            info = {}
        row = {"peer": c.peer, "precision": c.precision, "threads": c.threads, "flops": flops,
               "max_spectral_error": error, "info": info, **spread(times[id(c)])}
        if isinstance(c, ModcCandidate):
            row["compile_s"] = statistics.median(c.compile_seconds)
        rate = rates.get(c.precision)
        row["limit_s"] = fewest / (rate * 1e9) if rate else None
        rows.append(row)
        c.close()
    plan = subprocess.run([modc, "emit", MOD, "--network", network, *sets, "--emit", "plan", "--schedule", "muon"],
                          capture_output=True, text=True).stdout
    title = TITLES.get(network, network) + "".join(", " + s for s in args.set)
    return {"network": network, "title": title, "weights": len(shapes), "set": args.set,
            "naive_flops": naive_flops(shapes), "fewest_modc_flops": fewest, "gemm_rate_gflops": rates,
            "rows": rows, "thread_selection": threads_table, "select_rounds": args.select_rounds,
            "selection_rounds": select_record,
            "rounds": round_record, "modc_plan_muon": plan}


def environment(args):
    env = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
           "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), "numpy": np.__version__}
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        env["openblas"] = "%s; core %s" % (lib.openblas_get_config().decode(), lib.openblas_get_corename().decode())
    except (OSError, AttributeError):
        env["openblas"] = None
    if os.path.exists(args.gemm_rate):
        rate = gemm_rate(args.gemm_rate)
        env["onednn"] = {"version": rate["onednn"],
                         **{p: rate[p]["implementation"] for p in ("f32", "bf16") if rate.get(p)}}
    env["modc"] = subprocess.run([args.modc, "--version"], capture_output=True, text=True).stdout.strip()
    return env


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return "%s, %d cores" % (cpu, os.cpu_count())


# ---------------------------------------------------------------------------------------------
# Output

def threads_text(threads):
    return ", ".join("%s %d" % kv for kv in threads.items())


def seconds_text(s):
    return "%.2f s" % s if s >= 1 else "%.1f ms" % (s * 1e3)


def print_tables(results):
    env = results["environment"]
    print("Machine: %s; OPENBLAS_CORETYPE=%s; %s; oneDNN %s; %s; %s"
          % (env["machine"], env["OPENBLAS_CORETYPE"], env.get("openblas"), env.get("onednn"), env["modc"],
             env["date"]))
    for net in results["networks"]:
        loads = [r["load_before"] for r in net["rounds"]] + [r["load_after"] for r in net["rounds"]]
        rates = net["gemm_rate_gflops"]
        print("\n### %s: %d rounds, load average %.2f to %.2f\n" % (net["title"], len(net["rounds"]), min(loads),
                                                                    max(loads)))
        print("Machine limit: %.3g flops (the fewest of modc's plans) at oneDNN's large-GEMM rate, f32 %s, bf16 %s "
              "(median over the rounds).\n" % (net["fewest_modc_flops"], "%.0f GFLOP/s" % rates["f32"] if rates["f32"]
                                               else "n/a", "%.0f GFLOP/s" % rates["bf16"] if rates["bf16"] else "n/a"))
        fastest_peer = min(r["median_s"] for r in net["rows"] if not r["peer"].startswith("modc"))
        print("| peer | threads (best measured) | median | p10-p90 | flops done | GFLOP/s done | x machine limit "
              "| vs fastest peer | max error vs SVD |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in net["rows"]:
            limit = "%.2fx" % (r["median_s"] / r["limit_s"]) if r["limit_s"] else "n/a"
            print("| %s | %s | %s | %s-%s | %.3g | %.0f | %s | %.2fx | %.3f |" % (
                r["peer"], threads_text(r["threads"]), seconds_text(r["median_s"]), seconds_text(r["p10_s"]),
                seconds_text(r["p90_s"]), r["flops"], r["flops"] / r["median_s"] / 1e9, limit,
                fastest_peer / r["median_s"], r["max_spectral_error"]))
        compile_s = [r["compile_s"] for r in net["rows"] if "compile_s" in r]
        if compile_s:
            print("\nCompile latency, .mod to a ready CPU dualizer (median over modc's rounds): %.2f s to %.2f s"
                  % (min(compile_s), max(compile_s)))
        print("\nThread settings, each peer's interleaved (median over %d rounds; the fastest is kept):\n"
              % net["select_rounds"])
        print("| peer | threads | median |")
        print("|---|---|---|")
        for t in net["thread_selection"]:
            print("| %s | %s | %s |" % (t["peer"], threads_text(t["threads"]), seconds_text(t["median_s"])))


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("python3-matplotlib is not installed: no plot", file=sys.stderr)
        return
    nets = results["networks"]
    fig, axes = plt.subplots(1, len(nets), figsize=(7 * len(nets), 0.5 * max(len(n["rows"]) for n in nets) + 1.8))
    for ax, net in zip(np.atleast_1d(axes), nets):
        rows = net["rows"]
        labels = ["%s\n(%s)" % (r["peer"], threads_text(r["threads"])) for r in rows]
        ax.barh(labels, [r["median_s"] for r in rows],
                color=["#3b75af" if r["peer"].startswith("modc") else "#999999" for r in rows])
        for precision, style in (("f32", "--"), ("bf16", ":")):
            limit = next((r["limit_s"] for r in rows if r["precision"] == precision and r["limit_s"]), None)
            if limit:
                ax.axvline(limit, color="#c44", linestyle=style, label="machine limit, %s" % precision)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xlabel("seconds per dualization of all weights (median; lower is faster)")
        ax.set_title(net["title"], fontsize=9)
        ax.legend(loc="lower right", fontsize=8)
    fig.text(0.5, 0.005, "%d interleaved rounds; machine limit: the fewest flops of modc's plans at oneDNN's "
             "large-GEMM rate; %s" % (len(nets[0]["rounds"]), results["environment"]["date"]),
             ha="center", fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modc", default=os.path.join(ROOT, "build", "modc"))
    parser.add_argument("--gemm-rate", default=os.path.join(ROOT, "build", "bench", "gemm_rate"))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--select-rounds", type=int, default=2)
    parser.add_argument("--networks", default="gpt2_blocks", help="comma-separated, from bench/gpt2_blocks.mod")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a network parameter, as modc's --set (e.g. L=2: two of GPT-2's twelve layers)")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "performance"))
    parser.add_argument("--replot", action="store_true", help="redraw OUT.png and reprint the tables from OUT.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--grads", help=argparse.SUPPRESS)
    parser.add_argument("--torch-threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.grads, args.torch_threads)
    if args.replot:
        with open(args.out + ".json") as f:
            results = json.load(f)
        print_tables(results)
        plot(results, args.out + ".png")
        return
    if not os.path.exists(args.gemm_rate):
        print("%s is missing (oneDNN not found when modc was built?): no machine limit" % args.gemm_rate,
              file=sys.stderr)
    log = lambda text: print(text, file=sys.stderr, flush=True)
    results = {"environment": environment(args), "command": " ".join(["bench/run.py"] + sys.argv[1:]),
               "networks": []}
    with tempfile.TemporaryDirectory() as workdir:
        for network in args.networks.split(","):
            results["networks"].append(run_network(args, network, workdir, log))
    with open(args.out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    print_tables(results)
    plot(results, args.out + ".png")


if __name__ == "__main__":
    main()
