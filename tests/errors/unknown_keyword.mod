# Keyword arguments that name no parameter, with a suggestion when one is close.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: unknown_keyword.mod:[[@LINE+9]]:27: error: 'Linear' has no parameter 'dinn'; did you mean 'din'?
# CHECK-NEXT: {{^}}network a = Linear(10, 4, dinn = 4){{$}}
# CHECK-NEXT: {{^}}                          ^~~~{{$}}
# CHECK: unknown_keyword.mod:[[@LINE+7]]:27: error: 'Linear' has no parameter 'mas'; did you mean 'mass'?
# CHECK: unknown_keyword.mod:[[@LINE+7]]:13: error: missing argument 'd' of 'block'
# CHECK: unknown_keyword.mod:[[@LINE+6]]:19: error: 'block' has no parameter 'width'
# CHECK: unknown_keyword.mod:[[@LINE+6]]:18: error: 'ReLU' has no parameter 'mass'
# CHECK-NOT: error:
def block(d) = Linear(d, d)
network a = Linear(10, 4, dinn = 4)
network b = Linear(10, 4, mas = 2)
network c = block(width = 4)
network d = ReLU(mass = 2)
