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
