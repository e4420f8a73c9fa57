# The transformer blocks of GPT-2 small, as the benchmark measures them: per layer the Q, K, V
# and output projections (768 x 768) and the two MLP matrices (3072 x 768, 768 x 3072).
# Embedding and unembedding are left out, as in the Muon optimizer, which does not
# orthogonalise them.
def attention(heads, d) =
    (Linear(d, d) as o) @ MergeHeads @ ApplyAttentionScores
  @ ( SplitIntoHeads(heads) @ Linear(d, d) as v,
      Softmax(1) @ CausalMask @ AttentionQK
        @ ( SplitIntoHeads(heads) @ Linear(d, d) as q,
            SplitIntoHeads(heads) @ Linear(d, d) as k ) )

def mlp(d) = Linear(d, 4 * d) @ GELU @ Linear(4 * d, d)

network gpt2_blocks(heads = 12, d = 768, L = 12) =
    (mlp(d) @ attention(heads, d)) ^ L as blocks

# A small MLP, for the same comparison at small sizes.
network small_mlp(width = 512) = Linear(10, width) @ ReLU @ Linear(width, width) @ ReLU @ Linear(width, 784)
