# Sums are of numbers or of modules, never of one with the other.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: type_number_plus_module.mod:[[@LINE+6]]:15: error: cannot add a module to a number
# CHECK-NEXT: {{^}}network a = 2 + Linear(2, 2){{$}}
# CHECK-NEXT: {{^}}              ^{{$}}
# CHECK-NEXT: type_number_plus_module.mod:[[@LINE+3]]:17: note: this is a module
# CHECK: type_number_plus_module.mod:[[@LINE+3]]:18: error: cannot subtract a number from a module
# CHECK-NOT: error:
network a = 2 + Linear(2, 2)
network b = ReLU - 1
