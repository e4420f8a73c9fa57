# gpt.mod: a GPT-2-small-sized transformer, in the style of modula's GPT.
#
# Check it with   modc check examples/gpt.mod
# and list its 74 weights, with their paths and masses, with
#                 modc emit examples/gpt.mod --emit ir
# `modc explain examples/gpt.mod` derives each weight's target norm from the masses and
# sensitivities below: 1/7 for the embedding and the output layer, 5/7 for q, k and v,
# 5/21 for o and the MLP matrices, at any depth L (modula's values, math.md section 5).
#
# Reminders (docs/language.md has the whole language):
#   * `A @ B` is composition and reads right to left: B runs first, its output feeds A.
#     So a network written top to bottom runs from the last line (the input) up.
#   * `(A, B)` feeds the same input to A and B and outputs the pair.
#   * `c * M` scales the output of M by the number c (it is `Mul(c) @ M`), and
#     `A + B` adds two outputs (it is `Add @ (A, B)`).
#   * `M ^ n` is n copies of M, one after the other, each with weights of its own.
#   * `tare(M, m)` rescales the masses inside M so that M has mass m in total.
#   * `M as name` gives M a name; weight paths are built from these names.
#
# Masses. Every weight (atom) has a mass, 1 unless told otherwise; the mass of a
# compound is the sum of the masses of its parts. Mass is a part's share of the
# learning: one unit step in the network's modular norm moves a part of mass m by
# m / M in that part's own norm, where M is the total mass. modula's GPT gives the
# embedding mass 1, all the transformer blocks together mass 5 (with `tare`), and the
# output layer mass 1 (it is not tared, and a Linear has mass 1): M = 7.
#
# Sensitivities. Every module also has a sensitivity: how far its output can move when
# its input moves (a Lipschitz constant). Bonds (modules without weights) have
# sensitivity 1, except `Mul(c)`, which has |c|, and `Softmax(s)`, which has s. Along a
# composition sensitivities multiply; across a tuple they add. A weight's share of the
# step is divided by the sensitivity of everything after it, so the blocks below are
# built to have sensitivity exactly 1 each, however deep the network is.

# A residual connection for a network of L blocks: keep most of the input and add a
# small step of the branch. Its sensitivity is (1 - 1/(2L)) * 1 + 1/(2L) * 1 = 1 when the
# branch has sensitivity 1, so stacking 2L of them keeps the network's sensitivity at 1.
# `branch` is a module passed as an argument: a def takes modules as well as numbers.
def residual(L, branch) = (1 - 1/(2*L)) * Identity + 1/(2*L) * branch

# Attention, as a residual branch. The input (d features per position) goes three ways:
# into the values v, and into the queries q and keys k, which are compared to give
# attention scores. The scores mix the values; the output projection o maps the mixed
# heads back to d features. Each of q, k, v and o is a d x d matrix, split into (or
# merged from) `heads` heads of d / heads features each.
def attention(L, heads, d) = residual(L,
    (Linear(d, d) as o)                      # runs last: after the heads are merged
  @ MergeHeads
  @ (1/3) * ApplyAttentionScores             # (values, scores) -> mixed values
  @ ( SplitIntoHeads(heads) @ Linear(d, d) as v,
      Softmax(1) @ CausalMask @ AttentionQK @ Rope(d / heads)
        @ ( SplitIntoHeads(heads) @ Linear(d, d) as q,
            SplitIntoHeads(heads) @ Linear(d, d) as k ) ) )
# Why the 1/3: the pair (v, scores) has sensitivity 1 + 2 = 3 (a tuple adds the
# sensitivities of its items; q and k give 1 each to the scores). Multiplying by 1/3
# brings the attention branch back to sensitivity 1.
#
# Why the labels: a def names what it makes after itself, so the weights here are found
# under `attention`; `as q` names the branch holding the query matrix, and the matrix,
# the only weight in that branch, takes its name: `attention.q`. (The def `residual`
# would name its result `residual`, but the name of the outer def wins.)

# The MLP, as a residual branch: widen to 4 * d features, GELU, narrow back to d.
def mlp(L, d) = residual(L, (Linear(d, 4 * d) as down) @ GELU @ (Linear(4 * d, d) as up))

# One transformer block: attention first (it is on the right), then the MLP.
def block(L, heads, d) = mlp(L, d) @ attention(L, heads, d)

# The network. Its parameters have defaults (GPT-2 small); `--set` changes them:
#     modc emit examples/gpt.mod --set L=2 --set d=128 --set heads=4
# Reading from the bottom: token ids go into the embedding (mass 1), then through L
# blocks (mass 5 in total, so 5/L each), then the output layer gives one score per token.
# `block(...) ^ L as blocks` makes L copies named blocks[0] ... blocks[L-1]; each copy
# keeps the name of the def that made it, so the weights of the fourth block are
# blocks[3].block.attention.q, .k, .v, .o and blocks[3].block.mlp.up, .down.
network gpt(vocab = 50304, heads = 12, d = 768, L = 12) =
    (Linear(vocab, d) as head)
  @ tare(block(L, heads, d) ^ L as blocks, 5)
  @ tare(Embed(d, vocab) as embed, 1)

# Muon, as in modula's GPT training: momentum on the gradient, then the network's duality
# map (each weight gets lr times its target above times the unit direction of its norm:
# sqrt(dout/din) U V^T for the matrices, one RMS-normalised column per token for the
# embedding). examples/train_gpt.py trains a small copy of this network with it
# (set vocab, d, heads, L).
optimizer muon(lr = 0.1, beta = 0.9) {
    m = beta * m + grad
    W -= lr * dualize(m)
}
