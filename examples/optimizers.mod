# optimizers.mod: the MLP of mlp.mod with optimizers written in the language, each a
# step of training that modc type-checks, and warns about when it is almost surely a mistake.
#
#     modc check examples/optimizers.mod              # no error and no warning
#
# In an optimizer, `W` is a weight and `grad` its gradient; `dualize(...)` applies the
# duality map modc derives for that weight (see `modc explain`). The gradient lives in
# the dual space, so W only ever changes by dualize(...) of gradients, scaled by numbers.
# Any other name assigned in the body is state kept between steps (`m` below); read
# before its assignment it holds the previous step's value.

network mlp(pixels = 28 * 28, width = 256, classes = 10) =
    (Linear(classes, width) as output)
  @ ReLU
  @ (Linear(width, width) as hidden)
  @ ReLU
  @ (Linear(width, pixels) as input)

# Plain steepest descent under the modular norm: dualize the gradient and step.
optimizer sgd_dual(lr = 0.1) {
    W -= lr * dualize(grad)
}

# Muon: accumulate momentum on the gradient (dual), then dualize the momentum.
optimizer muon(lr = 0.02, beta = 0.95) {
    m = beta * m + grad
    W -= lr * dualize(m)
}

# Muon with Nesterov momentum, as in Keller Jordan's Muon: dualize the gradient plus the
# momentum looked one step ahead.
optimizer nesterov(lr = 0.02, beta = 0.95) {
    m = beta * m + grad
    W -= lr * dualize(grad + beta * m)
}

# Muon with decoupled weight decay (as in AdamW): shrink the weights by lr * wd, apart
# from the gradient step.
optimizer muon_wd(lr = 0.02, beta = 0.95, wd = 0.01) {
    m = beta * m + grad
    W -= lr * wd * W
    W -= lr * dualize(m)
}

# Nesterov momentum with decoupled weight decay.
optimizer nesterov_wd(lr = 0.02, beta = 0.95, wd = 0.01) {
    m = beta * m + grad
    W -= lr * wd * W
    W -= lr * dualize(grad + beta * m)
}

# The optimizers below use elementwise functions, the step count and statistics of each weight
# (docs/optimizers.md, "Expressions"). m / (sqrt(v) + eps) and sign(m) are duality maps of the
# l-infinity norm, damped per entry or not ("Types"): they reach the weights without dualize.

# AdamW as torch.optim.AdamW computes it (Loshchilov & Hutter, "Decoupled Weight Decay
# Regularization", 2019; PyTorch's defaults): the decay first, then Adam's moments with their
# bias corrections (Kingma & Ba 2015).
optimizer adamw(lr = 0.001, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 0.01) {
    W -= lr * wd * W
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    W -= lr / (1 - beta1 ^ step) * m / (sqrt(v) / sqrt(1 - beta2 ^ step) + eps)
}

# Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms", 2023, Algorithm 1; the
# defaults of its reference implementation): the sign of an interpolated momentum.
optimizer lion(lr = 0.0001, beta1 = 0.9, beta2 = 0.99, wd = 0.0) {
    W -= lr * wd * W
    W -= lr * sign(beta1 * m + (1 - beta1) * grad)
    m = beta2 * m + (1 - beta2) * grad
}

# Muon with cautious weight decay (Chen et al., "Cautious Weight Decay", 2025; as in
# modded-nanogpt): the decay applies only where the update and the weight agree in sign, so it
# never pushes a weight against its own step.
optimizer muon_cautious(lr = 0.02, beta = 0.95, wd = 0.01) {
    m = beta * m + grad
    u = dualize(grad + beta * m)
    W -= lr * wd * W * (u * W > 0)
    W -= lr * u
}

# NorMuon (Li et al., "NorMuon: Making Muon more efficient and scalable", 2025; modded-nanogpt's
# NorMuon): Nesterov momentum, orthogonalised, then each row (output neuron) divided by the root
# of its own running mean square, and the whole rescaled to the norm it had.
optimizer normuon(lr = 0.02, beta = 0.95, beta2 = 0.95, eps = 1e-10) {
    m = beta * m + (1 - beta) * grad
    u = dualize((1 - beta) * grad + beta * m)
    v = beta2 * v + (1 - beta2) * row_mean(u * u)
    n = u / sqrt(max(v, eps))
    W -= lr * n * (norm(u) / max(norm(n), eps))
}

# The NanoGPT speedrun's step in one block (modded-nanogpt's NorMuonAndAdam, train_gpt.py):
# NorMuon with cautious weight decay on the hidden matrices, Adam on the input layer (the
# speedrun's embedding) and the output layer (its head). Rules select weights by atom name
# (`for Linear`) or by path pattern (`for hidden`, `for blocks[*].mlp.*`); each weight runs the
# first rule that selects it, and every weight must have one (docs/optimizers.md, "Rules").
optimizer nanogpt(lr = 0.02, beta = 0.95, beta2 = 0.95, wd = 0.01, eps = 1e-10,
                  adam_lr = 0.008, beta1 = 0.8, adam_beta2 = 0.95, adam_eps = 1e-10) {
    for hidden {
        m = beta * m + (1 - beta) * grad
        u = dualize((1 - beta) * grad + beta * m)
        v = beta2 * v + (1 - beta2) * row_mean(u * u)
        n = u / sqrt(max(v, eps))
        n = n * (norm(u) / max(norm(n), eps))
        W -= lr * wd * W * (n * W > 0)
        W -= lr * n
    }
    for input, output {
        m = beta1 * m + (1 - beta1) * grad
        v = adam_beta2 * v + (1 - adam_beta2) * grad * grad
        W -= adam_lr / (1 - beta1 ^ step) * m / (sqrt(v) / sqrt(1 - adam_beta2 ^ step) + adam_eps)
    }
}
