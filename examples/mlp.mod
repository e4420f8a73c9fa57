# mlp.mod: a three-layer perceptron for 28 x 28 images (MNIST), as in modula's docs.
#
#     modc check examples/mlp.mod                 # parse, elaborate, check feature sizes
#     modc emit examples/mlp.mod --emit ir        # the module tree, with every weight
#     modc graph examples/mlp.mod | dot -Tsvg > mlp.svg
#
# A `.mod` file describes a network as a formula over modules. Modules with weights are
# *atoms* (here `Linear`); modules without weights are *bonds* (here `ReLU`). Both are
# declared in the prelude that every file sees (see docs/language.md for the list).
#
# `Linear(dout, din)` is the dout x din matrix W of y = W x: it takes din features and
# gives dout. Its norm is the RMS -> RMS operator norm, sqrt(din / dout) times the
# largest singular value of W; modc derives each weight's duality map from such norms.
#
# `A @ B` composes two modules and reads right to left, like function composition:
# B runs first and A gets its output. So the input layer is the rightmost Linear, and
# the network below runs 784 -> 256 -> 256 -> 10.

# A network has parameters with defaults; `--set width=512` overrides one. A default
# may be any expression over numbers, such as 28 * 28.
#
# `as NAME` names a layer: its weight is then found at the path NAME (in `modc emit`,
# `modc explain`, and the gradient and update files). Without the names the three
# Linears would be `linear[0]`, `linear[1]` and `linear[2]`, numbered in the order they
# run. `as` binds loosest of all operators, hence the parentheses.
network mlp(pixels = 28 * 28, width = 256, classes = 10) =
    (Linear(classes, width) as output)      # runs last: scores for the 10 classes
  @ ReLU
  @ (Linear(width, width) as hidden)
  @ ReLU
  @ (Linear(width, pixels) as input)        # runs first: the flattened image comes in here

# What modc makes of it (`modc emit --emit ir`):
#   * Each Linear is a weight with mass 1 (the default for atoms), so the network has
#     mass 3 and every layer gets a third of each step: the modular norm of the
#     weights is 3 * max over the layers of their RMS -> RMS norms.
#   * ReLU has sensitivity 1 and mass 0, so the whole network has sensitivity 1.
#   * Weights are numbered in the order they run: #0 is `input`, #2 is `output`.
#   * Feature sizes are checked: write Linear(width, 100) for the hidden layer and modc
#     reports that the modules do not fit: 'Linear(256, 100)' expects 100 features as
#     input, but 'Linear(256, 784)' outputs 256 features.
