# Definitions that use each other: the message names the cycle.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: recursion_mutual.mod:[[@LINE+6]]:29: error: 'even' is used inside its own definition ('even' -> 'odd' -> 'even'); definitions cannot be recursive
# CHECK-NEXT: {{^}}def odd(n) = Linear(2, 2) @ even(n){{$}}
# CHECK-NEXT: {{^}}                            ^~~~~~~{{$}}
# CHECK-NEXT: recursion_mutual.mod:[[@LINE+2]]:5: note: 'even' is defined here
# CHECK-NOT: error:
def even(n) = ReLU @ odd(n)
def odd(n) = Linear(2, 2) @ even(n)
network n = even(3)
