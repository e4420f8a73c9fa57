# The standard atoms and bonds of modc, declared in the .mod language itself.
# Every file is compiled with these in scope; docs/language.md explains the declarations.
#
#   atom NAME(params) : INPUT -> OUTPUT { shape = ..., norm = ..., mass = ..., sensitivity = ... }
#   bond NAME(params) : INPUT -> OUTPUT { sensitivity = ... }
#
# INPUT and OUTPUT are feature-size patterns: a parameter or number is a size, any other name
# is a size variable local to the instance (`x -> x` keeps the size), `_` is any size, and
# parentheses make tuples. A parameter annotated `: dim` must be a positive integer.
# Atoms have mass 1 and sensitivity 1 unless set; bonds have mass 0 and sensitivity 1.

# Linear(dout, din): the dout x din matrix of y = W x. Norm RMS -> RMS.
atom Linear(dout: dim, din: dim) : din -> dout {
    shape = (dout, din)
    norm = rms_to_rms
}

# Embed(d, vocab): one d-dimensional column per token. Norm l1 -> RMS.
atom Embed(d: dim, vocab: dim) : vocab -> d {
    shape = (d, vocab)
    norm = l1_to_rms
}

# Conv2D(dout, din, k): a k x k convolution from din to dout channels.
# Norm: k^2 times the largest RMS -> RMS norm over the kernel positions.
atom Conv2D(dout: dim, din: dim, k: dim) : din -> dout {
    shape = (dout, din, k, k)
    norm = conv_rms_to_rms
}

# Bias(d): a vector added to the features. Norm RMS.
atom Bias(d: dim) : d -> d {
    shape = d
    norm = rms
}

# Gain(d): a vector multiplying the features elementwise. Norm l_inf.
atom Gain(d: dim) : d -> d {
    shape = d
    norm = linf
}

bond Identity : x -> x
bond ReLU : x -> x
bond GELU : x -> x                        # modula divides GELU by 1.1289 to keep sensitivity 1
bond Softmax(scale) : x -> x { sensitivity = scale }
bond SplitIntoHeads(heads: dim) : x -> x
bond MergeHeads : x -> x
bond AttentionQK : (x, x) -> _            # (queries, keys) -> scores; q.k / d_head
bond CausalMask : x -> x
bond Rope(d: dim) : (x, y) -> (x, y)      # rotates queries and keys, head size d
bond ApplyAttentionScores : (v, _) -> v   # (values, scores) -> mixed values
bond AvgPool : x -> x                     # global average over positions; keeps channels
bond Flatten : _ -> _
bond LayerNorm : x -> x
bond RMSNorm : x -> x
bond Add : (x, x) -> x                    # `A + B` is Add @ (A, B)
bond Mul(c) : x -> x { sensitivity = c }  # `c * M` is Mul(c) @ M
