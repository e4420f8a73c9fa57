# gpt2_xl.mod: GPT-2 XL (48 layers, d = 1600, 25 heads), the GPT of gpt.mod at another size,
# for `modc partition` (docs/distributed.md):
#
#     modc partition examples/gpt2_xl.mod --ranks 64
#
# The blocks are those of gpt.mod: residual attention and MLP branches, weighted 1/(2L).

def residual(L, branch) = (1 - 1/(2*L)) * Identity + 1/(2*L) * branch

def attention(L, heads, d) = residual(L,
    (Linear(d, d) as o)
  @ MergeHeads
  @ (1/3) * ApplyAttentionScores
  @ ( SplitIntoHeads(heads) @ Linear(d, d) as v,
      Softmax(1) @ CausalMask @ AttentionQK @ Rope(d / heads)
        @ ( SplitIntoHeads(heads) @ Linear(d, d) as q,
            SplitIntoHeads(heads) @ Linear(d, d) as k ) ) )

def mlp(L, d) = residual(L, (Linear(d, 4 * d) as down) @ GELU @ (Linear(4 * d, d) as up))

def block(L, heads, d) = mlp(L, d) @ attention(L, heads, d)

network gpt2_xl(vocab = 50304, heads = 25, d = 1600, L = 48) =
    (Linear(vocab, d) as head)
  @ tare(block(L, heads, d) ^ L as blocks, 5)
  @ tare(Embed(d, vocab) as embed, 1)
