# Steps that lose the weights or never give them the gradient: warnings, and `check` still
# succeeds. W = ... must read W (directly or through state assigned from W earlier in the
# step), and some update of W must apply dualize(...) (directly or through state).
# RUN: %modc check %s 2>&1 | FileCheck %s
network n = Linear(4, 4)

# CHECK: warning_weights_overwritten.mod:[[@LINE+5]]:9: warning: W = ... overwrites the weights with a value that does not depend on them; update them with W -= ... or W = W - ...
# CHECK-NEXT: {{^}}    W = lr * dualize(grad){{$}}
# CHECK-NEXT: {{^}}        ^~~~~~~~~~~~~~~~~~{{$}}
# CHECK-NEXT: warning_weights_overwritten.mod:[[@LINE+2]]:7: note: the weights are overwritten here
optimizer overwrite(lr = 0.1) {
    W = lr * dualize(grad)
}

# Weight decay alone: W shrinks, but the gradient never reaches it.
# CHECK: warning_weights_overwritten.mod:[[@LINE+3]]:11: warning: optimizer 'decay_only' never applies a duality map (dualize(...), sign(...) of a gradient, or a gradient over its magnitude) to W: the gradient never reaches the weights
# CHECK-NEXT: {{^}}optimizer decay_only(lr = 0.1, wd = 0.01) {{[{]}}{{$}}
# CHECK-NEXT: {{^}}          ^~~~~~~~~~{{$}}
optimizer decay_only(lr = 0.1, wd = 0.01) {
    W -= lr * wd * W
}

# An optimizer that never updates W gets the older warning only.
# CHECK: warning_weights_overwritten.mod:[[@LINE+2]]:11: warning: optimizer 'idle' never updates W
# CHECK-NOT: never applies a duality map
optimizer idle {
}

# Near misses: no warning. W read through state assigned from it earlier in the step; W
# reached through state holding dualize(...); decoupled weight decay then the update.
optimizer through_state(lr = 0.1) {
    u = W
    W = u - lr * dualize(grad)
}
optimizer dualized_state(lr = 0.1) {
    u = dualize(grad)
    W -= lr * u
}
optimizer weight_decay(lr = 0.02, beta = 0.95, wd = 0.01) {
    m = beta * m + grad
    W -= lr * wd * W
    W -= lr * dualize(m)
}
# CHECK-NOT: warning:
# CHECK-NOT: error:
