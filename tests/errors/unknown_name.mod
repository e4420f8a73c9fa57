# Unknown names, with a suggestion when one is close, and a note where it is declared.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: unknown_name.mod:[[@LINE+11]]:13: error: unknown name 'Lnear'; did you mean 'Linear'?
# CHECK-NEXT: {{^}}network a = Lnear(10, 4) @ relu @ Linear(4, 2){{$}}
# CHECK-NEXT: {{^}}            ^~~~~{{$}}
# CHECK-NEXT: <prelude>:{{[0-9]+}}:6: note: 'Linear' is declared here
# CHECK: unknown_name.mod:[[@LINE+7]]:28: error: unknown name 'relu'; did you mean 'ReLU'?
# CHECK: unknown_name.mod:[[@LINE+7]]:20: error: unknown name 'blok'; did you mean 'block'?
# CHECK-NEXT: {{^}}network b = ReLU @ blok{{$}}
# CHECK: unknown_name.mod:[[@LINE+3]]:5: note: 'block' is declared here
# CHECK: unknown_name.mod:[[@LINE+5]]:13: error: unknown name 'zzzzzz'
# CHECK-NOT: error:
def block = Linear(4, 4) @ ReLU
network a = Lnear(10, 4) @ relu @ Linear(4, 2)
network b = ReLU @ blok
network c = zzzzzz
