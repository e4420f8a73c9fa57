# A negative scalar multiplier is allowed, with a warning: `check` still succeeds.
# RUN: %modc check %s 2>&1 | FileCheck %s
# CHECK: warning_negative_scale.mod:[[@LINE+4]]:13: warning: multiplying a module by the negative number -2 flips the sign of its output; its sensitivity is taken as |-2| = 2
# CHECK-NEXT: {{^}}network n = -2 * Linear(4, 4) @ ReLU{{$}}
# CHECK-NEXT: {{^}}            ^~{{$}}
# CHECK-NOT: error:
network n = -2 * Linear(4, 4) @ ReLU
