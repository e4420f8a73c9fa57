# An operator with nothing after it.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: syntax_missing_operand.mod:[[@LINE+8]]:19: error: expected expression, found 'network'
# CHECK-NEXT: {{^}}network a = ReLU @{{$}}
# CHECK-NEXT: {{^}}                  ^{{$}}
# CHECK: syntax_missing_operand.mod:[[@LINE+6]]:20: error: expected expression, found '@'
# CHECK: syntax_missing_operand.mod:[[@LINE+6]]:20: error: expected exponent, found ')'
# CHECK: syntax_missing_operand.mod:[[@LINE+6]]:29: error: expected expression, found ')'
# CHECK: syntax_missing_operand.mod:[[@LINE+6]]:20: error: expected name, found end of file
# CHECK-NOT: error:
network a = ReLU @
network b = ReLU @ @ GELU
network c = (ReLU ^)
network d = Linear(2, din = )
network e = ReLU as
