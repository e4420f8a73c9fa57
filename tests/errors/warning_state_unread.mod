# A state variable assigned but read nowhere else (reading itself in its own assignment, as
# in m = beta * m, does not count) has no effect on the step: a warning at its first
# assignment, and `check` still succeeds.
# RUN: %modc check %s 2>&1 | FileCheck %s
network n = Linear(4, 4)

# CHECK: warning_state_unread.mod:[[@LINE+7]]:5: warning: state 'm' is assigned but never read
# CHECK-NEXT: {{^}}    m = beta * m + grad{{$}}
# CHECK-NEXT: {{^}}    ^{{$}}
# CHECK-NEXT: warning_state_unread.mod:[[@LINE+5]]:5: warning: state 'v' is assigned but never read
# CHECK-NEXT: {{^}}    v = grad{{$}}
# CHECK-NEXT: {{^}}    ^{{$}}
optimizer unread(lr = 0.1, beta = 0.9) {
    m = beta * m + grad
    v = grad
    v += grad
    W -= lr * dualize(grad)
}

# Near misses: no warning. State read by the update, and state read before its assignment
# (the previous step's value).
optimizer muon(lr = 0.02, beta = 0.95) {
    m = beta * m + grad
    W -= lr * dualize(m)
}
optimizer previous(lr = 0.1) {
    W -= lr * dualize(g)
    g = grad
}
# CHECK-NOT: warning:
# CHECK-NOT: error:
