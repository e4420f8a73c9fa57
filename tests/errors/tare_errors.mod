# tare takes a module and a new mass; a module without weights cannot take a mass.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: tare_errors.mod:[[@LINE+5]]:13: error: 'tare' takes a module and its new mass: tare(M, mass)
# CHECK: tare_errors.mod:[[@LINE+5]]:18: error: 'tare' needs a module here, but this is a number
# CHECK: tare_errors.mod:[[@LINE+5]]:24: error: the new mass must be a number, but this is a module
# CHECK: tare_errors.mod:[[@LINE+5]]:18: error: cannot tare a module of mass 0 to mass 2: it has no weights to give the mass to
# CHECK-NOT: error:
network a = tare(Linear(2, 2))
network b = tare(3, 2)
network c = tare(ReLU, ReLU)
network d = tare(ReLU, 2)
