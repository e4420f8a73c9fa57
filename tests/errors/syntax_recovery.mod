# Several syntax errors in one file are all reported, in order; parsing resumes at the next
# line that begins a declaration, and the declarations that parsed are still checked (here:
# the unknown name).
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: syntax_recovery.mod:[[@LINE+7]]:26: error: expected ')', found 'def'
# CHECK: syntax_recovery.mod:[[@LINE+8]]:9: error: expected '=', found 'ReLU'
# CHECK: syntax_recovery.mod:[[@LINE+9]]:23: error: expected expression, found 'network'
# CHECK: syntax_recovery.mod:[[@LINE+9]]:16: error: unknown name 'RELU'; did you mean 'ReLU'?
# CHECK: syntax_recovery.mod:[[@LINE+9]]:21: error: unexpected 'GELU'; expected an operator or a new declaration
# CHECK: syntax_recovery.mod:[[@LINE+9]]:17: error: expected ')', found end of file
# CHECK-NOT: error:
network one = Linear(2, 2
def ok1 = ReLU
def two ReLU
  @ GELU
network three = ReLU @
network four = RELU
network five = ReLU GELU
def six = (ReLU,
