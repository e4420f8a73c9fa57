# Masses must be non-negative: as a keyword argument, with tare, and in a declaration.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: negative_mass.mod:[[@LINE+7]]:33: error: mass must be non-negative, but is -1
# CHECK-NEXT: {{^}}network a = Linear(2, 2, mass = -1){{$}}
# CHECK-NEXT: {{^}}                                ^~{{$}}
# CHECK: negative_mass.mod:[[@LINE+5]]:32: error: mass must be non-negative, but is -1/2
# CHECK: negative_mass.mod:[[@LINE+5]]:13: error: 'Heavy' has negative mass -3
# CHECK-NOT: error:
atom Heavy : x -> x { shape = 2; norm = rms; mass = -3 }
network a = Linear(2, 2, mass = -1)
network b = tare(Linear(2, 2), -1/2)
network c = Heavy
