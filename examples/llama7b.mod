# llama7b.mod: a 7B LLaMA-style network (32 layers, d = 4096, 32 heads, SwiGLU MLP of 11008),
# for `modc partition` (docs/distributed.md):
#
#     modc partition examples/llama7b.mod --ranks 512
#
# SwiGLU multiplies two branches elementwise, silu(gate x) * (up x). The prelude has no such
# bond, so this file declares one. Its sensitivity (1 here) is an assumption of this example,
# not a derived fact: it moves the targets, not the shapes, and the partition depends only on
# the shapes.

bond SwiGLU : (x, x) -> x

def residual(L, branch) = (1 - 1/(2*L)) * Identity + 1/(2*L) * branch

def attention(L, heads, d) = residual(L,
    (Linear(d, d) as o)
  @ MergeHeads
  @ (1/3) * ApplyAttentionScores
  @ ( SplitIntoHeads(heads) @ Linear(d, d) as v,
      Softmax(1) @ CausalMask @ AttentionQK @ Rope(d / heads)
        @ ( SplitIntoHeads(heads) @ Linear(d, d) as q,
            SplitIntoHeads(heads) @ Linear(d, d) as k ) )
  @ RMSNorm)

def mlp(L, d, h) = residual(L,
    (Linear(d, h) as down) @ SwiGLU @ (Linear(h, d) as gate, Linear(h, d) as up) @ RMSNorm)

def block(L, heads, d, h) = mlp(L, d, h) @ attention(L, heads, d)

network llama7b(vocab = 32000, heads = 32, d = 4096, h = 11008, L = 32) =
    (Linear(vocab, d) as head)
  @ RMSNorm
  @ tare(block(L, heads, d, h) ^ L as blocks, 5)
  @ tare(Embed(d, vocab) as embed, 1)
