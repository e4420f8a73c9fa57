"""The README's Python training snippet, run as written from an installed modc (scripts/newcomer.sh).

Runs the ```python block of README.md that builds a modc.torch.Optimizer, in the repository (its
paths are relative to it), with `loader` two batches of MNIST-shaped random data. Checks that
modc came from an installed package (the virtual environment of the README's install line),
that every parameter moved and stayed finite, and that the step counter advanced.

    venv/bin/python tests/python/readme_snippet.py [SOURCE_DIR]
"""
import os
import re
import sys

source = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") not in (source, os.path.dirname(os.path.abspath(__file__)))]
os.chdir(source)

import torch  # noqa: E402

import modc  # noqa: E402

# The installed package (in the venv's site-packages), not the repository's python/ or build/.
assert os.path.basename(os.path.dirname(os.path.dirname(modc.__file__))) == "site-packages", \
    f"modc imported from {modc.__file__}, not from an installed package"

readme = open(os.path.join(source, "README.md")).read()
blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "modc.torch.Optimizer" in b]
assert len(blocks) == 1, f"expected one ```python block with modc.torch.Optimizer in README.md, found {len(blocks)}"

torch.manual_seed(0)
loader = [(torch.randn(32, 784), torch.randint(0, 10, (32,))) for _ in range(2)]
scope = {"loader": loader}
# The snippet builds the model; keep its parameters as they were before the steps.
code = blocks[0].replace("for x, y in loader:", "before = [p.detach().clone() for p in model.parameters()]\nfor x, y in loader:", 1)
assert code != blocks[0], "the README's snippet no longer loops over `loader`"
exec(compile(code, "README.md", "exec"), scope)

model, opt = scope["model"], scope["opt"]
for (name, p), p0 in zip(model.named_parameters(), scope["before"]):
    assert torch.isfinite(p).all(), f"{name} is not finite after the steps"
    assert not torch.equal(p, p0), f"{name} did not move"
print(f"README snippet: {len(loader)} steps with modc {modc.__file__}; every parameter moved and is finite")
