"""examples/train_gpt.py, in seconds: a tiny GPT of examples/gpt.mod trains with modc and AdamW.

The full run (docs/training.md) takes minutes and is not part of the tests; these check that
the example's parts fit together: every parameter of the PyTorch model is a weight of gpt.mod
(no fallback needed), the embedding is in the .mod file's (d, vocab) layout and modc updates it
column by column, and a few steps at a tiny width lower the loss with either optimizer.

Needs torch and the modc package (conftest.py finds the build tree's python/: PYTHONPATH, else
beside MODC_BINARY, else build/).
"""
import math
import os
import sys

import pytest

torch = pytest.importorskip("torch")

# One torch thread for every test (conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")

import modc  # noqa: E402,F401  (conftest.py puts the build tree's python/ on the path)
from conftest import SOURCE_DIR  # noqa: E402

sys.path.insert(0, os.path.join(SOURCE_DIR, "examples"))
import train_gpt as tg  # noqa: E402

TINY = dict(width=32, heads=2, depth=2, context=32, batch_size=8)


@pytest.fixture(scope="module")
def data():
    return tg.load_data()


def test_the_text_and_its_splits(data):
    assert len(data["vocab"]) > 50 and len(data["train"]) > 300_000
    assert len(data["val"]) > 10_000 and len(data["test"]) > 10_000
    assert int(max(t.max() for t in (data["train"], data["val"], data["test"]))) < len(data["vocab"])


def test_every_parameter_is_a_weight_of_gpt_mod(data):
    vocab = len(data["vocab"])
    model = tg.GPT(vocab, TINY["width"], TINY["heads"], TINY["depth"], TINY["context"])
    opt = tg.make_optimizer("modc", model, 0.1, vocab, TINY["width"], TINY["heads"], TINY["depth"])
    assert opt.fallback is None  # nothing left over: no biases, no gains
    paths = [path for path, _ in opt.weights]
    assert len(paths) == 2 + 6 * TINY["depth"] and paths[0] == "embed" and paths[-1] == "head"
    assert dict(opt.weights)["embed"] is model.embed and model.embed.shape == (TINY["width"], vocab)


def test_modc_moves_each_seen_token_column_by_lr_times_its_target(data):
    """One step from zero momentum: a token's column moves by lr / 7 in RMS (the embedding's target
    1/7 times a unit column) if the token is in the batch, and not at all otherwise."""
    vocab = len(data["vocab"])
    torch.manual_seed(0)
    model = tg.GPT(vocab, TINY["width"], TINY["heads"], TINY["depth"], TINY["context"])
    opt = tg.make_optimizer("modc", model, 0.1, vocab, TINY["width"], TINY["heads"], TINY["depth"])
    x, y = tg.random_batch(data["train"], 4, 16, torch.Generator().manual_seed(0))
    before = model.embed.detach().clone()
    torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
    assert model.embed.grad.is_contiguous()
    opt.step()
    moved = (model.embed.detach() - before).pow(2).mean(0).sqrt()  # RMS change of each column
    seen = torch.zeros(vocab, dtype=torch.bool)
    seen[x.flatten()] = True
    assert torch.all(moved[~seen] == 0)
    assert torch.allclose(moved[seen], torch.full_like(moved[seen], 0.1 / 7), rtol=1e-4)


@pytest.mark.parametrize("kind", ["modc", "adamw"])
def test_a_few_steps_lower_the_loss(data, kind):
    run = tg.train(kind, tg.BEST[kind], data, steps=30, eval_every=10, curve_windows=16, seed=0, **TINY)
    losses = run["history"]["train_loss"]
    assert not run["diverged"] and all(math.isfinite(v) for v in losses)
    # From ln(vocab) = 4.6 nats; 30 steps give modc 2.8 and AdamW 2.7 (seeds 0 and 1 alike).
    assert sum(losses[-5:]) / 5 < losses[0] - 0.5, losses
    assert run["val_loss"] < losses[0] - 0.5 and math.isfinite(run["test_loss"])


def test_modc_run_is_deterministic(data):
    runs = [tg.train("modc", 0.1, data, steps=5, eval_every=5, curve_windows=8, seed=3, final_test=False, **TINY)
            for _ in range(2)]
    assert runs[0]["history"]["train_loss"] == runs[1]["history"]["train_loss"]
    assert runs[0]["val_loss"] == runs[1]["val_loss"]
