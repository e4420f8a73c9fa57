# A dimension that is not an integer, directly or after arithmetic.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: dim_not_integer.mod:[[@LINE+5]]:20: error: argument 'dout' of 'Linear' is a dimension and must be a positive integer, but is 5/2
# CHECK-NEXT: {{^}}network a = Linear(2.5, 2){{$}}
# CHECK-NEXT: {{^}}                   ^~~{{$}}
# CHECK: dim_not_integer.mod:[[@LINE+3]]:30: error: argument 'din' of 'Linear' is a dimension and must be a positive integer, but is 4/3
# CHECK-NOT: error:
network a = Linear(2.5, 2)
network b(d = 4) = Linear(d, d / 3)
