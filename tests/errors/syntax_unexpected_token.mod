# Something after a complete expression that cannot continue it.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: syntax_unexpected_token.mod:[[@LINE+6]]:18: error: unexpected 'GELU'; expected an operator or a new declaration
# CHECK-NEXT: {{^}}network a = ReLU GELU{{$}}
# CHECK-NEXT: {{^}}                 ^~~~{{$}}
# CHECK: syntax_unexpected_token.mod:[[@LINE+4]]:17: error: unexpected ';'; expected an operator or a new declaration
# CHECK: syntax_unexpected_token.mod:[[@LINE+5]]:1: error: unexpected '}'; expected an operator or a new declaration
# CHECK-NOT: error:
network a = ReLU GELU
network b = ReLU;
network c = ReLU
}
