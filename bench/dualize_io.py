#!/usr/bin/python3
"""End-to-end `modc dualize` on a GPT-2 small run: peak memory and the share of reading and writing.

Writes Gaussian float32 gradients for every weight of examples/gpt.mod (names = weight paths) to
a safetensors file, then runs `modc dualize` on it RUNS times under /usr/bin/time -v with
MODC_PHASE_TIMES=1 (modc's own seconds per phase: read, check, compile, run, and where modc
streams the updates out during the run, the seconds its threads spent writing, and commit). With
several --modc binaries (say, before and after a change) their runs are interleaved, round by
round. Prints, per binary, the medians: wall time, each phase, the I/O share (reading, checking
and writing over modc's whole time), and peak RSS against the gradients' bytes and modc's own estimate of its
work buffers (from the memory-limit message of `--memory-limit 1`).

Usage: bench/dualize_io.py [--modc build/modc ...] [--runs 3] [--json OUT.json]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GPT = os.path.join(ROOT, "examples", "gpt.mod")


def write_safetensors(path, names, arrays):
    """The safetensors layout (8-byte header size, JSON header padded to 8, data), by hand."""
    header, offset = {}, 0
    for name, a in zip(names, arrays):
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for a in arrays:
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())


def gradients(modc, path):
    explain = json.loads(subprocess.run([modc, "explain", GPT, "--json"], check=True, capture_output=True,
                                        text=True).stdout)
    rng = np.random.default_rng(0)
    names = [leaf["path"] for leaf in explain["leaves"]]
    arrays = [rng.standard_normal(leaf["shape"], dtype=np.float32) for leaf in explain["leaves"]]
    write_safetensors(path, names, arrays)
    return sum(a.nbytes for a in arrays), len(names)


def work_bytes(modc, grads):
    """modc's estimate of its work buffers, from the message that refuses a 1-byte memory limit."""
    done = subprocess.run([modc, "dualize", GPT, "--in", grads, "--out", grads + ".never", "--memory-limit", "1"],
                          capture_output=True, text=True)
    m = re.search(r"work buffers ([\d.]+) (bytes|KiB|MiB|GiB)", done.stderr)
    if not m:
        return None
    return float(m.group(1)) * 1024 ** ["bytes", "KiB", "MiB", "GiB"].index(m.group(2))


def one_run(modc, grads, out):
    env = dict(os.environ, MODC_PHASE_TIMES="1")
    done = subprocess.run(["/usr/bin/time", "-v", modc, "dualize", GPT, "--in", grads, "--out", out], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("modc dualize failed:\n" + done.stderr)
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", done.stderr).group(1)
    seconds = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall.split(":"))))
    line = done.stderr.split("modc: phases:")[1].splitlines()[0]
    phases = {k: float(v) for k, v in re.findall(r"\s*(\w[\w ]*?) ([\d.]+) s(?:,|$)", line.strip())}
    os.remove(out)
    return {"rss_bytes": rss_kib * 1024, "wall_seconds": seconds, "phases": phases}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modc", action="append", help="a modc binary (repeatable); default build/modc")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    binaries = args.modc or [os.path.join(ROOT, "build", "modc")]
    results = {"network": "examples/gpt.mod (GPT-2 small)", "load_before": os.getloadavg(), "binaries": []}
    with tempfile.TemporaryDirectory() as work:
        grads = os.path.join(work, "grads.safetensors")
        results["gradient_bytes"], results["weights"] = gradients(binaries[0], grads)
        runs = {b: [] for b in binaries}
        for _ in range(args.runs):
            for b in binaries:
                runs[b].append(one_run(b, grads, os.path.join(work, "updates.safetensors")))
        for b in binaries:
            med = lambda f: statistics.median(f(r) for r in runs[b])
            phases = {k: med(lambda r: r["phases"][k]) for k in runs[b][0]["phases"]}
            # Writing happens inside "run" where it streams ("of which writing"), after it otherwise.
            io = sum(phases.get(k, 0) for k in ("read", "check", "write", "of which writing", "commit"))
            total = sum(v for k, v in phases.items() if k != "of which writing")
            results["binaries"].append({"modc": b, "runs": runs[b], "wall_seconds": med(lambda r: r["wall_seconds"]),
                                        "peak_rss_bytes": med(lambda r: r["rss_bytes"]), "phases": phases,
                                        "io_share": io / total,
                                        "work_bytes": work_bytes(b, grads)})
    results["load_after"] = os.getloadavg()
    g = results["gradient_bytes"]
    print("%s, %d weights, %.0f MB of float32 gradients; load average %.2f before, %.2f after"
          % (results["network"], results["weights"], g / 1e6, results["load_before"][0], results["load_after"][0]))
    print("\n| modc | wall | read | check | compile | run | write | I/O share | peak RSS | / gradients | "
          "(peak - work buffers) / gradients |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results["binaries"]:
        p = r["phases"]
        work = r["work_bytes"]
        write = ("%.2f s after the run" % p["write"] if "write" in p else
                 "%.2f s in the run + %.2f s commit" % (p.get("of which writing", 0), p.get("commit", 0)))
        print("| %s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %s | %.0f%% | %.0f MB | %.2fx | %s |" % (
            r["modc"], r["wall_seconds"], p.get("read", 0), p.get("check", 0), p.get("compile", 0), p.get("run", 0),
            write, 100 * r["io_share"], r["peak_rss_bytes"] / 1e6, r["peak_rss_bytes"] / g,
            "%.2fx (work %.0f MB)" % ((r["peak_rss_bytes"] - work) / g, work / 1e6) if work else "-"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
