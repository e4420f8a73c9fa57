# A network that doubles forty times grows past the limit on modules: reported once, at the
# network, with a note where the limit is reached.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: network_too_large.mod:[[@LINE+5]]:9: error: network 'n' grows past modc's limit of 1000000 modules
# CHECK-NEXT: {{^}}network n = twice(twice({{.*}}
# CHECK: network_too_large.mod:[[@LINE+2]]:20: note: the limit is reached here
# CHECK-NOT: error:
def twice(M) = (M, M)
network n = twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(twice(ReLU))))))))))))))))))))))))))))))))))))))))
