# A name declared twice, and a built-in redefined.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: redefinition.mod:[[@LINE+11]]:5: error: redefinition of 'block'
# CHECK-NEXT: {{^}}def block = GELU{{$}}
# CHECK-NEXT: {{^}}    ^~~~~{{$}}
# CHECK-NEXT: redefinition.mod:[[@LINE+7]]:5: note: 'block' was first defined here
# CHECK: redefinition.mod:[[@LINE+8]]:6: error: redefinition of 'Linear'
# CHECK-NEXT: {{^}}atom Linear : x -> x { shape = 2; norm = rms }{{$}}
# CHECK-NEXT: {{^}}     ^~~~~~{{$}}
# CHECK-NEXT: <prelude>:{{[0-9]+}}:6: note: 'Linear' was first defined here
# CHECK: redefinition.mod:[[@LINE+5]]:5: error: 'tare' is a built-in and cannot be redefined
# CHECK-NOT: error:
def block = ReLU
def block = GELU
atom Linear : x -> x { shape = 2; norm = rms }
def tare = ReLU
network n = block
