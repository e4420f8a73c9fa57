# A call or a group whose ')' is missing: reported where the ')' should be, at the end of
# the line rather than on the next one; the next declaration still parses.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: syntax_missing_paren.mod:[[@LINE+5]]:24: error: expected ')', found 'network'
# CHECK-NEXT: {{^}}network a = Linear(2, 2{{$}}
# CHECK-NEXT: {{^}}                       ^{{$}}
# CHECK: syntax_missing_paren.mod:[[@LINE+4]]:16: error: expected ')', found '='
# CHECK-NOT: error:
network a = Linear(2, 2
network b = ReLU
def f(a, b = 1 = 2) = ReLU
