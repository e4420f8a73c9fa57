# A file of definitions only passes `check`, but commands that need a network say there is none.
# RUN: %modc check %s
# RUN: not %modc emit %s 2>&1 | FileCheck %s
# RUN: not %modc explain %s 2>&1 | FileCheck %s
# CHECK: modc: error: the file defines no network
# CHECK-NOT: error:
def block = Linear(4, 4) @ ReLU
