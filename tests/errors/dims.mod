# Layers whose feature sizes do not fit: the error names both sides.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: dims.mod:[[@LINE+3]]:18: error: modules do not fit: 'Linear(10, 128)' expects 128 features as input, but 'Linear(256, 784)' outputs 256 features
# CHECK: dims.mod:[[@LINE+2]]:43: note: 'Linear(256, 784)' is here
# CHECK-NOT: error:
network misfit = Linear(10, 128) @ ReLU @ Linear(256, 784)
