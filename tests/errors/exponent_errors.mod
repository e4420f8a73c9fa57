# Exponents must be integer numbers; modules take non-negative powers only.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: exponent_errors.mod:[[@LINE+7]]:28: error: an exponent must be a number, but this is a module
# CHECK: exponent_errors.mod:[[@LINE+7]]:28: error: an exponent must be an integer, but this is 3/2
# CHECK: exponent_errors.mod:[[@LINE+7]]:28: error: a module can only be raised to a non-negative integer power, not -1
# CHECK: exponent_errors.mod:[[@LINE+7]]:17: error: zero cannot be raised to a negative power
# CHECK: exponent_errors.mod:[[@LINE+7]]:17: error: this power is too large to compute exactly
# CHECK: exponent_errors.mod:[[@LINE+7]]:13: error: 1000000000 copies of this module would exceed modc's limit of 1000000 modules
# CHECK-NOT: error:
network a = Linear(2, 2) ^ Linear(2, 2)
network b = Linear(2, 2) ^ 1.5
network c = Linear(2, 2) ^ -1
network d = Mul(0 ^ -1)
network e = Mul(10 ^ 100000)
network f = Linear(2, 2) ^ 1000000000
