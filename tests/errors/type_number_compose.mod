# '@' composes modules; a number in a composition, a tuple or a network body is an error.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: type_number_compose.mod:[[@LINE+7]]:13: error: '@' composes modules, but this is a number
# CHECK-NEXT: {{^}}network a = 2 @ Linear(2, 2){{$}}
# CHECK-NEXT: {{^}}            ^{{$}}
# CHECK: type_number_compose.mod:[[@LINE+5]]:20: error: a tuple holds modules, but this item is a number
# CHECK: type_number_compose.mod:[[@LINE+5]]:13: error: network 'c' must describe a module, but its body is a number
# CHECK: type_number_compose.mod:[[@LINE+5]]:26: error: 'as' names a module, but this is a number
# CHECK-NOT: error:
network a = 2 @ Linear(2, 2)
network b = (ReLU, 3)
network c = 1 + 2
network d = ReLU @ (2 as two)
