# The type check of optimizer blocks with functions and statistics (issue 23): what stays refused
# says which space the value lives in, and what to do. Every error is reported, located; exit 1.
# RUN: not %modc check %s 2>&1 | FileCheck %s
network n = Linear(4, 4)

# A gradient, momentum or second moment never reaches the weights undualized.
# CHECK: optimizer_types.mod:[[@LINE+2]]:10: error: ill-typed update: W -= ... subtracts a dual value (a gradient) from the primal weights; dualize it first, e.g. W -= lr * dualize(grad)
optimizer raw(lr = 0.1) {
    W -= lr * grad
}
# CHECK: optimizer_types.mod:[[@LINE+3]]:10: error: ill-typed update: W -= ... subtracts a dual value (a gradient) from the primal weights
optimizer momentum(lr = 0.1, beta = 0.9) {
    m = beta * m + grad
    W -= lr * m
}
# CHECK: optimizer_types.mod:[[@LINE+3]]:10: error: ill-typed update: W -= needs a direction in weight space, but this is a second moment of dual values (gradients), which has no direction; a magnitude only scales a step, as in m / (sqrt(v) + eps)
optimizer second_moment(lr = 0.1, beta = 0.9) {
    v = beta * v + grad * grad
    W -= lr * v
}
# CHECK: optimizer_types.mod:[[@LINE+3]]:10: error: ill-typed update: W -= needs a direction in weight space, but this is the magnitude of dual values (gradients), which has no direction
optimizer root(lr = 0.1, beta = 0.9) {
    v = beta * v + grad * grad
    W -= lr * sqrt(v)
}
# A mask is a number per entry, not a direction.
# CHECK: optimizer_types.mod:[[@LINE+2]]:10: error: ill-typed update: W -= needs a value in weight space, but this is a number per entry (a mask or a ratio)
optimizer mask(lr = 0.1) {
    W -= lr * (grad > 0)
}
# A direction plus a magnitude, and sqrt of a direction.
# CHECK: optimizer_types.mod:[[@LINE+3]]:28: error: cannot add the magnitude of dual values (gradients) to a dual value (a gradient): a magnitude has no direction; divide by it instead, as in m / (sqrt(v) + eps)
# CHECK: optimizer_types.mod:[[@LINE+3]]:28: error: sqrt of a dual value (a gradient): a direction has no square root; take it of a magnitude (abs(x), x * x, or an average of squares)
optimizer magnitudes(lr = 0.1) {
    W -= lr * dualize(grad + abs(grad))
    W -= lr * dualize(sqrt(grad))
}
# A direction over a magnitude of the other space, or of a second moment.
# CHECK: optimizer_types.mod:[[@LINE+3]]:20: error: cannot divide a dual value (a gradient) by the magnitude of primal values
# CHECK: optimizer_types.mod:[[@LINE+3]]:20: error: cannot divide a dual value (a gradient) by a second moment of dual values (gradients): divide a direction by a magnitude of it (sqrt of a second moment, abs, rms or norm)
optimizer wrong_magnitude(lr = 0.1) {
    W -= lr * grad / norm(W)
    W -= lr * grad / (grad * grad)
}
# Unknown functions (with a hint), arity, keywords, statistics inside statistics, chained comparisons.
# CHECK: optimizer_types.mod:[[@LINE+6]]:15: error: unknown function 'sqr' in an optimizer; did you mean 'sqrt'?
# CHECK: optimizer_types.mod:[[@LINE+6]]:23: error: clamp takes 3 arguments: clamp(x, low, high)
# CHECK: optimizer_types.mod:[[@LINE+6]]:33: error: max takes its arguments by position, not by name
# CHECK: optimizer_types.mod:[[@LINE+6]]:36: error: dualize(...) inside norm(...): norm needs its argument over the whole weight first; assign dualize(...) to a name in a statement before
# CHECK: optimizer_types.mod:[[@LINE+6]]:39: error: comparisons do not chain; combine masks with '*' (a < b) * (b < c)
optimizer misc(lr = 0.1) {
    W -= lr * sqr(grad) * dualize(grad)
    W -= lr * dualize(clamp(grad, 1))
    W -= lr * dualize(max(grad, b = 0))
    W -= lr * dualize(grad) * norm(dualize(grad))
    W -= lr * dualize(grad) * (0 < lr < 1)
}
# The numbers modc gives every step are not parameters or variables.
# CHECK: optimizer_types.mod:[[@LINE+2]]:30: error: 'step' is predefined in an optimizer and cannot be a parameter
# CHECK: optimizer_types.mod:[[@LINE+2]]:5: error: 'fan_in' is a number modc gives every step and cannot be assigned
optimizer reserved(lr = 0.1, step = 1) {
    fan_in = 2
    W -= lr * dualize(grad)
}
