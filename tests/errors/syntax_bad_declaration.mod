# Text that does not begin a declaration, and declarations with a bad name.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: syntax_bad_declaration.mod:[[@LINE+7]]:1: error: expected a declaration ('network', 'def', 'atom', 'bond' or 'optimizer'), found 'netwrk'
# CHECK-NEXT: {{^}}netwrk a = ReLU{{$}}
# CHECK-NEXT: {{^}}^~~~~~{{$}}
# CHECK: syntax_bad_declaration.mod:[[@LINE+5]]:9: error: expected name, found '='
# CHECK: syntax_bad_declaration.mod:[[@LINE+5]]:5: error: expected name, found 'as'
# CHECK: syntax_bad_declaration.mod:[[@LINE+5]]:8: error: expected ':', found 'x'
# CHECK-NOT: error:
netwrk a = ReLU
network = ReLU
def as = ReLU
atom A x -> x
