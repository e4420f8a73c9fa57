# A tuple of two flowing into a bond that takes a tuple of three.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: dims_tuple_arity.mod:[[@LINE+3]]:13: error: modules do not fit: the next module expects a tuple of 3, but the previous module gives a tuple of 2
# CHECK-NOT: error:
bond Three : (x, x, x) -> x
network a = Three @ (Linear(4, 4), Linear(4, 4))
