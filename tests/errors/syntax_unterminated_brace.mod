# An atom's fields or an optimizer's statements without their closing brace.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: syntax_unterminated_brace.mod:[[@LINE+5]]:15: error: expected '}', found 'network'
# CHECK: syntax_unterminated_brace.mod:[[@LINE+6]]:21: error: expected '}', found end of file
# CHECK-NOT: error:
atom A : x -> x {
    shape = 3
    norm = rms
network n = ReLU
optimizer o { w -= 1
