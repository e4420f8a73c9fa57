# Division by zero, of numbers and of modules, also after arithmetic.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: division_by_zero.mod:[[@LINE+6]]:21: error: division by zero
# CHECK-NEXT: {{^}}network a = Mul(1 / 0){{$}}
# CHECK-NEXT: {{^}}                    ^{{$}}
# CHECK: division_by_zero.mod:[[@LINE+4]]:35: error: division by zero
# CHECK: division_by_zero.mod:[[@LINE+4]]:28: error: division by zero
# CHECK-NOT: error:
network a = Mul(1 / 0)
network b(L = 1) = Linear(2, 2) / (L - 1)
network c = Linear(2, 2) / 0.0
