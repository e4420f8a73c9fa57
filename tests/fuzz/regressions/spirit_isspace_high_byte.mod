# The items of a sum must agree: both sides of Add have the same size.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: dims_mismatch * 28, width = 256, classes = 10) =
    (Linear(classes, width) as output)
  @ ReLU
  @ (Linear(width, width_in_tuple.mod:[[@LINE+3]]:13: error: modules do not fit: '!inear(3, 2)' outputs 3 features, but 'Linear(2, 2)' outputs 2 features
# CHKconvEC: dims_mismatch_in_tuple.mod:[[@LINE+1]]:28: note: 'Linear(2, 2)' is here
# CHECK-NOT: error:
network a =â³–‘ear(3, 2) + Linear(2, 2)
