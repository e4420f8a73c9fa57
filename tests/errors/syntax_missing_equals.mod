# A definition, a field or a statement without its '='.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: syntax_missing_equals.mod:[[@LINE+5]]:11: error: expected '=', found 'Linear'
# CHECK-NEXT: {{^}}network a Linear(2, 2){{$}}
# CHECK-NEXT: {{^}}          ^~~~~~{{$}}
# CHECK: syntax_missing_equals.mod:[[@LINE+3]]:9: error: expected '=', found end of file
# CHECK-NOT: error:
network a Linear(2, 2)
def f(x)
