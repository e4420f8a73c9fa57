network stack(width = 8, depth = 2, hidden = 2 * width) =
    Linear(width, hidden) @ ReLU @ (Linear(hidden, hidden) @ ReLU) ^ depth @ Linear(hidden, width)

# `--set NAME=VALUE` replaces the default of a network parameter; later defaults that use it
# follow (hidden = 2 * width). Values are decimal numbers: 12, 2.5, 1e2, -3. Several --set
# options may be given. Setting a parameter the network lacks, or giving a value that makes
# a size invalid, is an error with a location; a malformed --set is refused before parsing.
# RUN: %modc emit %s | FileCheck %s --check-prefix=DEFAULT
# RUN: %modc emit %s --set width=4 | FileCheck %s --check-prefix=WIDTH
# RUN: %modc emit %s --set width=4 --set hidden=5 --set depth=0 | FileCheck %s --check-prefix=ALL
# RUN: %modc emit %s --set width=1e1 | FileCheck %s --check-prefix=EXPONENT
# RUN: %modc check %s --set depth=3
# RUN: not %modc check %s --set heads=4 2>&1 | FileCheck %s --check-prefix=UNKNOWN
# RUN: not %modc check %s --set width=2.5 2>&1 | FileCheck %s --check-prefix=FRACTION
# RUN: not %modc check %s --set depth=-1 2>&1 | FileCheck %s --check-prefix=NEGATIVE
# RUN: not %modc check %s --set width 2>&1 | FileCheck %s --check-prefix=MALFORMED
# RUN: not %modc check %s --set width=1/2 2>&1 | FileCheck %s --check-prefix=RATIO

# DEFAULT:      network stack: 8 -> 8, mass 4, sensitivity 1, 4 weights
# DEFAULT:      atom Linear(16, 8) #0 linear[0] shape [16, 8]
# DEFAULT:      atom Linear(16, 16) #1 linear[1] shape [16, 16]
# DEFAULT:      atom Linear(16, 16) #2 linear[2] shape [16, 16]
# DEFAULT:      atom Linear(8, 16) #3 linear[3] shape [8, 16]

# WIDTH:        network stack: 4 -> 4, mass 4, sensitivity 1, 4 weights
# WIDTH:        atom Linear(8, 4) #0 linear[0] shape [8, 4]
# WIDTH:        atom Linear(4, 8) #3 linear[3] shape [4, 8]

# `M ^ 0` is the identity, so depth=0 leaves only the outer layers.
# ALL:          network stack: 4 -> 4, mass 2, sensitivity 1, 2 weights
# ALL-NEXT:       compose {mass 2, sensitivity 1, 4 -> 4}
# ALL-NEXT:         atom Linear(5, 4) #0 linear[0] shape [5, 4]
# ALL-NEXT:         bond Identity {mass 0, sensitivity 1, 5 -> 5}
# ALL-NEXT:         bond ReLU {mass 0, sensitivity 1, 5 -> 5}
# ALL-NEXT:         atom Linear(4, 5) #1 linear[1] shape [4, 5]

# EXPONENT:     network stack: 10 -> 10, mass 4, sensitivity 1, 4 weights
# EXPONENT:     atom Linear(20, 10) #0 linear[0] shape [20, 10]

# UNKNOWN:      set.mod:1:9: error: network 'stack' has no parameter 'heads' to set
# FRACTION:     set.mod:2:12: error: argument 'dout' of 'Linear' is a dimension and must be a positive integer, but is 5/2
# NEGATIVE:     set.mod:2:70: error: a module can only be raised to a non-negative integer power, not -1
# MALFORMED:    modc: error: --set expects NAME=NUMBER, got 'width'
# RATIO:        modc: error: --set expects NAME=NUMBER, got 'width=1/2'
