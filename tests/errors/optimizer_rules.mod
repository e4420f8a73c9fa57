# Per-weight rules (issue 23): a rule that selects no weight, a weight no rule selects, and a
# statement outside the rules are errors, located; `check` exits 1.
# RUN: not %modc check %s 2>&1 | FileCheck %s
network n = (Linear(4, 8) as head) @ (Gain(8) as gain) @ (Linear(8, 4) as body)

# CHECK: optimizer_rules.mod:[[@LINE+4]]:5: error: a statement outside a rule: in an optimizer with rules (for ... { }), every statement belongs to one
optimizer outside(lr = 0.1) {
    for Linear { W -= lr * dualize(grad) }
    for Gain { W -= lr * sign(grad) }
    W -= lr * dualize(grad)
}

# CHECK: optimizer_rules.mod:[[@LINE+3]]:11: error: optimizer 'uncovered' has no rule for weight 'gain' (Gain); add a rule that selects it, e.g. for Gain { ... }
# CHECK: optimizer_rules.mod:[[@LINE+3]]:17: error: 'Embed' selects no weight of network 'n': name an atom (Linear, Embed, ...) or a pattern over weight paths (modc explain lists them)
# CHECK: optimizer_rules.mod:[[@LINE+3]]:15: error: 'blocks[*].mlp.*' selects no weight of network 'n'
optimizer uncovered(lr = 0.1) {
    for Linear, Embed { W -= lr * dualize(grad) }
    for head, blocks[*].mlp.* { W -= lr * sign(grad) }
}

# Each rule is typed as a block of its own: the error names the rule.
# CHECK: optimizer_rules.mod:[[@LINE+3]]:21: error: ill-typed update: W -= ... subtracts a dual value (a gradient) from the primal weights
optimizer typed(lr = 0.1) {
    for Linear { W -= lr * dualize(grad) }
    for gain { W -= lr * grad }
}
