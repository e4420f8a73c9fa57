# A definition that uses itself.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: recursion_direct.mod:[[@LINE+5]]:20: error: 'block' is used inside its own definition; definitions cannot be recursive
# CHECK-NEXT: {{^}}def block = ReLU @ block @ Linear(2, 2){{$}}
# CHECK-NEXT: {{^}}                   ^~~~~{{$}}
# CHECK-NEXT: recursion_direct.mod:[[@LINE+2]]:5: note: 'block' is defined here
# CHECK-NOT: error:
def block = ReLU @ block @ Linear(2, 2)
network n = block
