# Modules compose with '@'; they cannot be multiplied or divided by each other.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: type_module_product.mod:[[@LINE+6]]:26: error: cannot multiply two modules; compose them with '@'
# CHECK-NEXT: {{^}}network a = Linear(2, 2) * Linear(2, 2){{$}}
# CHECK-NEXT: {{^}}                         ^{{$}}
# CHECK: type_module_product.mod:[[@LINE+4]]:18: error: cannot divide two modules; compose them with '@'
# CHECK: type_module_product.mod:[[@LINE+4]]:15: error: cannot divide by a module
# CHECK-NOT: error:
network a = Linear(2, 2) * Linear(2, 2)
network b = ReLU / GELU
network c = 2 / ReLU
