#!/usr/bin/python3
"""modc against its peers, in one run on one machine, on the same shapes and step counts.

Peers: modc on the CPU (JIT kernels + OpenBLAS), PyTorch running the Muon optimizer's 5-step
Newton-Schulz per parameter (float32, as torch users run Muon), the same iteration in NumPy,
and the machine's float32 matmul peak (OpenBLAS sgemm on large square matrices). Accuracy of
each is measured against the SVD: the largest ||X - U V^T||_2 over the weights.

Usage: bench/run.py [--modc build/modc] [--runs 7] [--out docs/performance] [--replot]
Writes OUT.json and OUT.png and prints a Markdown table.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MUON = (3.4445, -4.7750, 2.0315)
NETWORKS = [("gpt2_blocks", "GPT-2 small blocks (12 x Q,K,V,O,MLP)"), ("small_mlp", "small MLP")]


def naive_flops(shapes, steps=5):
    """4 m^2 n + 2 m^3 per Newton-Schulz step, m <= n: the count every peer is charged."""
    total = 0.0
    for s in shapes:
        m, n = min(s), max(s)
        total += steps * (4.0 * m * m * n + 2.0 * m ** 3)
    return total


def median_time(fn, runs, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), float(np.percentile(times, 10)), float(np.percentile(times, 90))


def polar(g):
    u, _, vt = np.linalg.svd(g.astype(np.float64), full_matrices=False)
    return u @ vt


def spectral_error(x, g):
    return float(np.linalg.norm(x.astype(np.float64) - polar(g), 2))


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


def torch_peer(grads, runs):
    import torch

    torch.set_num_threads(os.cpu_count())

    def zeropower_via_newtonschulz5(G, steps=5):
        # Keller Jordan's Muon, in float32 on the CPU (bfloat16 matmuls are slow on CPUs).
        a, b, c = MUON
        X = G.float()
        if G.size(-2) > G.size(-1):
            X = X.mT
        X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
        for _ in range(steps):
            A = X @ X.mT
            B = b * A + c * A @ A
            X = a * X + B @ X
        if G.size(-2) > G.size(-1):
            X = X.mT
        return X

    tensors = [torch.from_numpy(g) for g in grads]
    with torch.no_grad():
        timing = median_time(lambda: [zeropower_via_newtonschulz5(t) for t in tensors], runs)
        outputs = [zeropower_via_newtonschulz5(t).numpy() for t in tensors]
    return timing, outputs, torch.__version__


def sgemm_peak(n=4096, runs=5):
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    t, _, _ = median_time(lambda: a @ b, runs, warmup=1)
    return 2.0 * n ** 3 / t / 1e9


def modc_peer(modc, network, grads, names, schedule, runs, workdir, flags=()):
    mod = os.path.join(HERE, "gpt2_blocks.mod")
    bench = subprocess.run([modc, "bench", mod, "--network", network, "--schedule", schedule, "--runs", str(runs),
                            "--json", *flags], check=True, capture_output=True, text=True)
    report = json.loads(bench.stdout)
    explain = json.loads(subprocess.run([modc, "explain", mod, "--network", network, "--json"], check=True,
                                        capture_output=True, text=True).stdout)
    gdir = os.path.join(workdir, "g_" + network)
    udir = os.path.join(workdir, "u_%s_%s%s" % (network, schedule, "".join(flags)))
    os.makedirs(gdir, exist_ok=True)
    for name, g in zip(names, grads):
        np.save(os.path.join(gdir, name + ".npy"), g)
    subprocess.run([modc, "dualize", mod, "--network", network, "--in", gdir, "--out", udir, "--schedule", schedule,
                    *flags], check=True)
    scales = {leaf["path"]: leaf["scale_value"] for leaf in explain["leaves"]}
    outputs = [np.load(os.path.join(udir, name + ".npy")) / scales[name] for name in names]
    return report, outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modc", default=os.path.join(ROOT, "build", "modc"))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "performance"))
    parser.add_argument("--networks", default=",".join(n for n, _ in NETWORKS),
                        help="comma-separated, from bench/gpt2_blocks.mod")
    parser.add_argument("--replot", action="store_true", help="redraw OUT.png and reprint the table from OUT.json")
    args = parser.parse_args()
    if args.replot:
        with open(args.out + ".json") as f:
            results = json.load(f)
        print_table(results)
        plot(results, args.out + ".png")
        return

    rng = np.random.default_rng(2024)
    peak = sgemm_peak()
    results = {"machine": machine(), "sgemm_peak_gflops": peak, "networks": []}
    with tempfile.TemporaryDirectory() as workdir:
        for network, title in [(n, t) for n, t in NETWORKS if n in args.networks.split(",")]:
            explain = json.loads(subprocess.run([args.modc, "explain", os.path.join(HERE, "gpt2_blocks.mod"),
                                                 "--network", network, "--json"], check=True, capture_output=True,
                                                text=True).stdout)
            names = [leaf["path"] for leaf in explain["leaves"]]
            shapes = [tuple(leaf["shape"]) for leaf in explain["leaves"]]
            grads = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
            flops = naive_flops(shapes)
            rows = []

            def add(peer, timing, outputs, note=""):
                # Accuracy on the three largest weights keeps the SVDs affordable.
                order = sorted(range(len(grads)), key=lambda i: -grads[i].size)[:3]
                error = max(spectral_error(outputs[i], grads[i]) for i in order)
                rows.append({"peer": peer, "median_s": timing[0], "p10_s": timing[1], "p90_s": timing[2],
                             "effective_gflops": flops / timing[0] / 1e9, "max_spectral_error": error, "note": note})

            try:
                timing, outputs, version = torch_peer(grads, args.runs)
                add("PyTorch Muon NS (per parameter)", timing, outputs, "torch " + version)
            except ImportError:
                print("python3-torch is not installed: the PyTorch peer is left out", file=sys.stderr)
            outputs = [numpy_ns(g) for g in grads]
            add("NumPy NS", median_time(lambda: [numpy_ns(g) for g in grads], args.runs), outputs,
                "numpy " + np.__version__)
            # The same coefficients as the peers iterating directly, then with all of modc's
            # choices (Gram Newton-Schulz where it pays), then the default, more accurate schedule.
            for schedule, flags, label in (("muon", ("--no-gram",), "muon, direct"), ("muon", (), "muon"),
                                           ("polar-express", (), "polar-express")):
                report, outputs = modc_peer(args.modc, network, grads, names, schedule, args.runs, workdir, flags)
                add("modc CPU, " + label, (report["median_seconds"], report["p10_seconds"], report["p90_seconds"]),
                    outputs, "compile %.2f s" % report["compile_seconds"])
            results["networks"].append({"network": network, "title": title, "weights": len(shapes),
                                        "naive_flops": flops, "rows": rows,
                                        "latency": compile_latency(args.modc, network, workdir)})

    with open(args.out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    print_table(results)
    plot(results, args.out + ".png")


def compile_latency(modc, network, workdir):
    """Seconds from .mod to a ready CPU dualizer, and to cubin (NVRTC) cold and with a warm cache."""
    mod = os.path.join(HERE, "gpt2_blocks.mod")
    report = json.loads(subprocess.run([modc, "bench", mod, "--network", network, "--runs", "1", "--warmup", "0",
                                        "--json"], check=True, capture_output=True, text=True).stdout)
    latency = {"cpu_seconds": report["compile_seconds"]}
    env = dict(os.environ, MODC_CACHE_DIR=os.path.join(workdir, "cache_" + network))
    for key in ("cubin_cold_seconds", "cubin_warm_seconds"):
        start = time.perf_counter()
        done = subprocess.run([modc, "emit", mod, "--network", network, "--emit", "ptx"], env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            latency[key] = None  # this modc was built without NVRTC
            continue
        latency[key] = time.perf_counter() - start
    return latency


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores" % (cpu, os.cpu_count())


def print_table(results):
    print("Machine: %s; OpenBLAS sgemm peak %.0f GFLOP/s" % (results["machine"], results["sgemm_peak_gflops"]))
    for net in results["networks"]:
        print("\n### %s (%d weights; %.3g FLOP per run counted as 4m^2n + 2m^3 per step)\n"
              % (net["title"], net["weights"], net["naive_flops"]))
        torch_rows = [r for r in net["rows"] if r["peer"].startswith("PyTorch")]
        base = torch_rows[0]["median_s"] if torch_rows else None
        best = min(r["median_s"] for r in net["rows"] if not r["peer"].startswith("modc"))
        lat = net["latency"]
        cubin = lambda v: "%.2f s" % v if v is not None else "n/a (no NVRTC)"
        print("Compile latency: .mod to CPU dualizer %.2f s; to cubin %s cold, %s with a warm cache\n"
              % (lat["cpu_seconds"], cubin(lat["cubin_cold_seconds"]), cubin(lat["cubin_warm_seconds"])))
        print("| peer | median | p10-p90 | effective GFLOP/s | % of sgemm peak | speed-up vs PyTorch "
              "| speed-up vs best peer | max error vs SVD |")
        print("|---|---|---|---|---|---|---|---|")
        for r in net["rows"]:
            speedup = "%.2fx" % (base / r["median_s"]) if base else "-"
            print("| %s | %.1f ms | %.1f-%.1f ms | %.1f | %.0f%% | %s | %.2fx | %.3f |" % (
                r["peer"], r["median_s"] * 1e3, r["p10_s"] * 1e3, r["p90_s"] * 1e3, r["effective_gflops"],
                100 * r["effective_gflops"] / results["sgemm_peak_gflops"], speedup, best / r["median_s"],
                r["max_spectral_error"]))


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("python3-matplotlib is not installed: no plot", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, len(results["networks"]), figsize=(6 * len(results["networks"]), 4))
    for ax, net in zip(np.atleast_1d(axes), results["networks"]):
        peers = [r["peer"] for r in net["rows"]]
        gflops = [r["effective_gflops"] for r in net["rows"]]
        ax.barh(peers, gflops, color=["#999999" if not p.startswith("modc") else "#3b75af" for p in peers])
        ax.axvline(results["sgemm_peak_gflops"], color="#c44", linestyle="--", label="sgemm peak")
        ax.set_xlabel("effective GFLOP/s (higher is faster)")
        ax.set_title(net["title"])
        ax.legend(loc="lower right")
    fig.text(0.5, 0.005, "every peer charged 4 m^2 n + 2 m^3 flops per Newton-Schulz step, 5 steps; "
             "sgemm peak: OpenBLAS on 4096 x 4096", ha="center", fontsize=8, color="#555555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
