# An error inside a definition's body names the calls that expanded it, innermost first, as
# clang names template instantiations.
# RUN: not %modc check %s 2>&1 | FileCheck %s --strict-whitespace
# CHECK: error_in_definition.mod:[[@LINE+11]]:34: error: cannot add a module to a number
# CHECK-NEXT: {{^}}def inner(d) = Linear(d, d) @ (2 + Linear(d, d)){{$}}
# CHECK-NEXT: {{^}}                                 ^{{$}}
# CHECK-NEXT: error_in_definition.mod:[[@LINE+9]]:16: note: in the expansion of 'inner' called here
# CHECK-NEXT: {{^}}def outer(d) = inner(d) @ ReLU{{$}}
# CHECK-NEXT: {{^}}               ^~~~~~~~{{$}}
# CHECK-NEXT: error_in_definition.mod:[[@LINE+7]]:15: note: in the expansion of 'outer' called here
# CHECK-NEXT: {{^}}network net = outer(8){{$}}
# CHECK-NEXT: {{^}}              ^~~~~~~~{{$}}
# CHECK-NEXT: error_in_definition.mod:[[@LINE+2]]:36: note: this is a module
# CHECK-NOT: error:
def inner(d) = Linear(d, d) @ (2 + Linear(d, d))
def outer(d) = inner(d) @ ReLU
network net = outer(8)
