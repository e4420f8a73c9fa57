#!/usr/bin/env python3
"""Fails when a layer of modc includes a header of a layer above it (docs/architecture.md).

Every project include is written from the project root ("compiler/frontend/module_ir.hpp"),
so the folder of a header names its layer. Run by ctest as the test `layering`.
"""
import pathlib
import re
import sys

# Each layer, lowest first, with the layers it may include (besides itself).
LAYERS = {
    "support": [],
    "program": ["support"],
    "grammar": ["support"],
    "compiler/frontend": ["support", "program", "grammar"],
    "compiler/analysis": ["support", "program", "grammar", "compiler/frontend"],
    "compiler/backend": ["support", "program", "grammar", "compiler/frontend", "compiler/analysis"],
    "runtime": ["support", "program"],  # runs programs; knows nothing of the compiler
    "library": ["support", "program", "grammar", "compiler/frontend", "compiler/analysis", "compiler/backend",
                "runtime"],
    "tools": ["support", "program", "grammar", "compiler/frontend", "compiler/analysis", "compiler/backend",
              "runtime", "library"],
    "python": ["support", "program", "grammar", "compiler/frontend", "compiler/analysis", "compiler/backend",
               "runtime", "library"],
}
GENERATED = {"version.hpp", "cuda_host_text.inc"}  # configured into the build folder


def layer_of(path):
    for layer in sorted(LAYERS, key=len, reverse=True):
        if path == layer or path.startswith(layer + "/"):
            return layer
    return None


def main(root):
    root = pathlib.Path(root)
    problems = []
    for layer in LAYERS:
        for file in sorted((root / layer).rglob("*")):
            if file.suffix not in {".cpp", ".hpp", ".h", ".in"}:
                continue
            own = file.relative_to(root).as_posix()
            if layer_of(own) != layer:
                continue  # a deeper layer's file (compiler/frontend under compiler)
            for n, line in enumerate(file.read_text().splitlines(), 1):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if not m or m.group(1) in GENERATED:
                    continue
                target = m.group(1)
                where = f"{own}:{n}"
                if ".." in target.split("/"):
                    problems.append(f"{where}: include '{target}' by its path from the project root")
                    continue
                to = layer_of(target)
                if to is None or not (root / target).exists():
                    problems.append(f"{where}: '{target}' is not a header of any layer")
                elif to != layer and to not in LAYERS[layer]:
                    problems.append(f"{where}: {layer}/ includes '{target}' from {to}/, a layer it may not use")
    for p in problems:
        print(p)
    print(f"layering: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent))
