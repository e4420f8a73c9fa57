network small(d = 4) = Linear(2, d) @ Linear(d, 3)
network big(d = 16) = Linear(2, d) @ ReLU @ Linear(d, 3)

# A file may define several networks; `--network NAME` picks the one that `emit` and
# `graph` print. Without it they refuse, naming the choices; a misspelt name gets a hint.
# `check` checks every network in the file.
# RUN: %modc check %s
# RUN: %modc emit %s --network small | FileCheck %s --check-prefix=SMALL
# RUN: %modc emit %s --network big --emit ir | FileCheck %s --check-prefix=BIG
# RUN: %modc graph %s --network big | FileCheck %s --check-prefix=GRAPH
# RUN: not %modc emit %s 2>&1 | FileCheck %s --check-prefix=SEVERAL
# RUN: not %modc graph %s 2>&1 | FileCheck %s --check-prefix=SEVERAL
# RUN: not %modc emit %s --network bg 2>&1 | FileCheck %s --check-prefix=MISSPELT
# RUN: not %modc emit %s --network medium 2>&1 | FileCheck %s --check-prefix=UNKNOWN
# RUN: %modc emit %s --network small --emit ast | FileCheck %s --check-prefix=AST

# SMALL:      network small: 3 -> 2, mass 2, sensitivity 1, 2 weights
# SMALL-NEXT:   compose {mass 2, sensitivity 1, 3 -> 2} <1:24>
# SMALL-NEXT:     atom Linear(4, 3) #0 linear[0] shape [4, 3] norm rms_to_rms {mass 1, sensitivity 1, 3 -> 4} <1:39>
# SMALL-NEXT:     atom Linear(2, 4) #1 linear[1] shape [2, 4] norm rms_to_rms {mass 1, sensitivity 1, 4 -> 2} <1:24>
# SMALL-NOT:  network

# BIG:        network big: 3 -> 2, mass 2, sensitivity 1, 2 weights
# BIG-NEXT:     compose {mass 2, sensitivity 1, 3 -> 2} <2:23>
# BIG-NEXT:       atom Linear(16, 3) #0 linear[0] shape [16, 3] norm rms_to_rms {mass 1, sensitivity 1, 3 -> 16} <2:45>
# BIG-NEXT:       bond ReLU {mass 0, sensitivity 1, 16 -> 16} <2:38>
# BIG-NEXT:       atom Linear(2, 16) #1 linear[1] shape [2, 16] norm rms_to_rms {mass 1, sensitivity 1, 16 -> 2} <2:23>
# BIG-NOT:    network

# GRAPH:      digraph "big" {
# GRAPH:      Linear(16, 3)\nlinear[0]

# SEVERAL:    modc: error: the file defines several networks (small, big); choose one with --network NAME
# MISSPELT:   modc: error: no network named 'bg'; did you mean 'big'?
# UNKNOWN:    modc: error: no network named 'medium'
# UNKNOWN-NOT: did you mean

# --emit ast prints the whole file, whatever --network says.
# AST:        Network small <1:9>
# AST:        Network big <2:9>
