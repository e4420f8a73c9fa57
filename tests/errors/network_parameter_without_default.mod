# A network's parameters need defaults unless set with --set.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# RUN: %modc check %s --set width=8
# CHECK: network_parameter_without_default.mod:[[@LINE+4]]:13: error: parameter 'width' of network 'mlp' has no default; give it one or set it with --set width=VALUE
# CHECK-NEXT: {{^}}network mlp(width, classes = 10) = Linear(classes, width) @ Linear(width, 4){{$}}
# CHECK-NEXT: {{^}}            ^~~~~{{$}}
# CHECK-NOT: error:
network mlp(width, classes = 10) = Linear(classes, width) @ Linear(width, 4)
