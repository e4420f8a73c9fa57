# Dimensions of zero or below, and a weight size computed to be zero.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: dim_not_positive.mod:[[@LINE+6]]:20: error: argument 'dout' of 'Linear' is a dimension and must be a positive integer, but is 0
# CHECK: dim_not_positive.mod:[[@LINE+6]]:23: error: argument 'din' of 'Linear' is a dimension and must be a positive integer, but is -4
# CHECK: dim_not_positive.mod:[[@LINE+6]]:13: error: 'Flat(0)' would have a weight size of 0; sizes must be positive integers
# CHECK: dim_not_positive.mod:[[@LINE+2]]:33: note: the size is computed here
# CHECK-NOT: error:
atom Flat(n) : x -> x { shape = n * 2; norm = rms }
network a = Linear(0, 2)
network b = Linear(2, -4)
network c = Flat(0)
