# An argument given twice: by position and keyword, or by keyword twice.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: duplicate_argument.mod:[[@LINE+10]]:13: error: missing argument 'din' of 'Linear'
# CHECK: duplicate_argument.mod:[[@LINE+9]]:23: error: argument 'dout' is given twice
# CHECK-NEXT: {{^}}network a = Linear(2, dout = 3){{$}}
# CHECK-NEXT: {{^}}                      ^~~~{{$}}
# CHECK: duplicate_argument.mod:[[@LINE+7]]:36: error: argument 'mass' is given twice
# CHECK: duplicate_argument.mod:[[@LINE+7]]:26: error: argument 'd' is given twice
# CHECK: duplicate_argument.mod:[[@LINE+7]]:13: error: missing argument 'dout' of 'Linear'
# CHECK: duplicate_argument.mod:[[@LINE+6]]:29: error: a positional argument cannot follow a keyword argument
# CHECK-NOT: error:
def block(d) = Linear(d, d)
network a = Linear(2, dout = 3)
network b = Linear(2, 2, mass = 1, mass = 2)
network c = block(d = 1, d = 2)
network d = Linear(din = 2, 3)
