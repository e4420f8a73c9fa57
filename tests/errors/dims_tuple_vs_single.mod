# A tuple where one size is expected, and one size where a tuple is expected.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: dims_tuple_vs_single.mod:[[@LINE+3]]:13: error: modules do not fit: 'Linear(2, 2)' expects 2 features as input, but the previous module gives a tuple of 2
# CHECK: dims_tuple_vs_single.mod:[[@LINE+3]]:13: error: modules do not fit: the next module expects a tuple of 2, but 'Linear(4, 4)' outputs 4 features
# CHECK-NOT: error:
network a = Linear(2, 2) @ (Linear(2, 2), Linear(2, 2))
network b = Add @ Linear(4, 4)
