"""Keller Jordan's Muon iteration (github.com/KellerJordan/Muon, as modded-nanogpt runs it): the
peer that bench/run.py times and the accuracy scripts of bench/ measure modc against."""

MUON = (3.4445, -4.7750, 2.0315)  # a, b, c of its quintic Newton-Schulz step


def zeropower_via_newtonschulz5(G, steps=5, dtype=None):
    """Muon's zeropower_via_newtonschulz5 with the working dtype a parameter: bfloat16 (None) as
    Muon ships it, or float32 / float64 for references."""
    import torch  # here, so that importing this module does not need torch
    a, b, c = MUON
    X = G.to(dtype or torch.bfloat16)
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
