# Numbers past modc's exact arithmetic: literals, results and sensitivities.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: numbers_too_large.mod:[[@LINE+4]]:17: error: number '1e5000' is out of range
# CHECK: numbers_too_large.mod:[[@LINE+4]]:17: error: this number is too large to compute exactly
# CHECK: numbers_too_large.mod:[[@LINE+4]]:13: error: the sensitivity of this module is too large to compute exactly
# CHECK-NOT: error:
network a = Mul(1e5000)
network b = Mul(3^2500 * 3^2500 * 3^2500 * 3^2500)
network c = Mul(3) ^ 100000
