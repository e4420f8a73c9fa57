# Too many positional arguments, for primitives and for defs.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: argument_count.mod:[[@LINE+9]]:27: error: 'Linear' takes 2 arguments, but 3 were given
# CHECK-NEXT: {{^}}network a = Linear(10, 4, 2){{$}}
# CHECK-NEXT: {{^}}                          ^{{$}}
# CHECK-NEXT: <prelude>:{{[0-9]+}}:6: note: 'Linear' is declared here
# CHECK: argument_count.mod:[[@LINE+6]]:22: error: 'block' takes 1 argument, but 2 were given
# CHECK: argument_count.mod:[[@LINE+3]]:5: note: 'block' is declared here
# CHECK: argument_count.mod:[[@LINE+5]]:18: error: 'ReLU' takes no arguments, but 1 was given
# CHECK-NOT: error:
def block(d) = Linear(d, d)
network a = Linear(10, 4, 2)
network b = block(4, 4)
network c = ReLU(4)
