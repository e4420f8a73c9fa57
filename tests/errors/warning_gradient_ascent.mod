# Adding dualize(...) to the weights climbs the gradient instead of descending it: a warning,
# located at the dualize call (through a state variable too), and `check` still succeeds.
# RUN: %modc check %s 2>&1 | FileCheck %s
network n = Linear(4, 4)

# CHECK: warning_gradient_ascent.mod:[[@LINE+5]]:15: warning: W += ... adds dualize(...) to the weights: this climbs the gradient (gradient ascent); descend with W -= lr * dualize(...)
# CHECK-NEXT: {{^}}    W += lr * dualize(grad){{$}}
# CHECK-NEXT: {{^}}              ^~~~~~~~~~~~~{{$}}
# CHECK-NEXT: warning_gradient_ascent.mod:[[@LINE+2]]:7: note: the weights are updated here
optimizer ascent(lr = 0.1) {
    W += lr * dualize(grad)
}

# The sign goes through the state: u holds +dualize(m), and W = W + lr * u adds it.
# CHECK: warning_gradient_ascent.mod:[[@LINE+4]]:9: warning: W = ... adds dualize(...) to the weights: this climbs the gradient (gradient ascent); descend with W = W - lr * dualize(...)
# CHECK: warning_gradient_ascent.mod:[[@LINE+4]]:7: note: the weights are updated here
optimizer through_state(lr = 0.1, beta = 0.9) {
    m = beta * m + grad
    u = dualize(m)
    W = W + lr * u
}

# A negative default flips the sign: W -= lr * ... with lr = -0.1 adds.
# CHECK: warning_gradient_ascent.mod:[[@LINE+2]]:15: warning: W -= ... adds dualize(...) to the weights
optimizer negative_rate(lr = -0.1) {
    W -= lr * dualize(grad)
}

# Near misses, all descending or of unknown sign: no warning.
optimizer sgd(lr = 0.1) {
    W -= lr * dualize(grad)
}
optimizer assigned(lr = 0.1, beta = 0.9) {
    m = beta * m + grad
    W = W - lr * dualize(m)
}
optimizer minus_twice(lr = 0.1, eps = 0.5) {
    W += -lr / (1 + eps) * dualize(grad)
}
optimizer no_default(lr) {
    W += lr * dualize(grad)
}
optimizer power(lr = 0.1) {
    W += lr ^ 2 * dualize(grad)
}
# CHECK-NOT: warning:
# CHECK-NOT: error:
