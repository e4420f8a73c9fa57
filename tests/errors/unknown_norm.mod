# norm = must name a known norm, in a call and in a declaration.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: unknown_norm.mod:[[@LINE+7]]:9: error: 'norm' must name one of the known norms (see docs/language.md)
# CHECK: unknown_norm.mod:[[@LINE+7]]:33: error: unknown norm 'spectal'; did you mean 'spectral'?
# CHECK-NEXT: {{^}}network a = Linear(4, 4, norm = spectal){{$}}
# CHECK-NEXT: {{^}}                                ^~~~~~~{{$}}
# CHECK: unknown_norm.mod:[[@LINE+5]]:33: error: unknown norm '2'
# CHECK-NOT: error:
atom W : x -> x { shape = 2
 norm = nuclear }
network a = Linear(4, 4, norm = spectal)
network b = Linear(4, 4, norm = 2)
