# digits.mod: the MLP that examples/train_digits.py and examples/lr_transfer.py train on
# scikit-learn's digits (8 x 8 images, 10 classes), with the optimizer that trains it.
#
#     modc explain examples/digits.mod                  # targets and scales of the 3 weights
#     modc explain examples/digits.mod --set width=1024 # the same network, wider
#
# The network runs 64 -> width -> width -> 10 (composition reads right to left, as in
# mlp.mod). The layers are named as the attributes of the PyTorch model in train_digits.py
# (`input`, `hidden`, `output`), so that its parameters `input.weight`, ... map to these
# weights by dropping `.weight`; the biases are not described here and go to the fallback
# optimizer (AdamW) of modc.torch.Optimizer.
network digits(pixels = 64, width = 128, classes = 10) =
    (Linear(classes, width) as output)
  @ ReLU
  @ (Linear(width, width) as hidden)
  @ ReLU
  @ (Linear(width, pixels) as input)

# Muon: momentum on the gradient, then the network's duality map (each weight gets its
# target, 1/3 here, times sqrt(dout/din) times the polar factor U V^T of its momentum).
optimizer muon(lr = 0.1, beta = 0.9) {
    m = beta * m + grad
    W -= lr * dualize(m)
}

# Muon with decoupled weight decay (as in AdamW: the weights shrink by lr * wd each step).
optimizer muon_wd(lr = 0.1, beta = 0.9, wd = 0.01) {
    m = beta * m + grad
    W -= lr * wd * W
    W -= lr * dualize(m)
}
