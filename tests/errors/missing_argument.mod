# A parameter without a default that the call does not give.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: missing_argument.mod:[[@LINE+8]]:13: error: missing argument 'din' of 'Linear'
# CHECK-NEXT: {{^}}network a = Linear(10){{$}}
# CHECK-NEXT: {{^}}            ^~~~~~~~~~{{$}}
# CHECK-NEXT: <prelude>:{{[0-9]+}}:{{[0-9]+}}: note: 'din' is declared here
# CHECK: missing_argument.mod:[[@LINE+5]]:13: error: missing argument 'd' of 'block'
# CHECK: missing_argument.mod:[[@LINE+2]]:11: note: 'd' is declared here
# CHECK-NOT: error:
def block(d, k = 2) = Linear(d, k)
network a = Linear(10)
network b = block(k = 3)
