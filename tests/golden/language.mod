# Claims of docs/language.md, checked: precedence, the sugar behind `*`, `/`, `+`, `-`, `^`,
# `tare` and `as`, masses and sensitivities, and how weights are named.

# -2 ^ 2 is -(2 ^ 2); 2 ^ 3 ^ 2 is 2 ^ 9; a minus in an exponent binds to it: 2 ^ -1 ^ 2 is 2.
network numbers = (-2 ^ 2) * Identity @ (2 ^ 3 ^ 2) * Identity @ (2 ^ -1 ^ 2) * Identity @ 1.5e-1 * Identity
# RUN: %modc emit %s --network numbers 2>&1 | FileCheck %s --check-prefix=NUMBERS
# NUMBERS: warning: multiplying a module by the negative number -4 flips the sign of its output; its sensitivity is taken as |-4| = 4
# NUMBERS: bond Mul(3/20)
# NUMBERS: bond Mul(2)
# NUMBERS: bond Mul(512)
# NUMBERS: bond Mul(-4) {mass 0, sensitivity 4,

# c * M, M * c and M / c put Mul in front of M; 2 * A @ B scales after A.
network scaled = 2 * Linear(3, 4) @ Linear(4, 4) / 4
# RUN: %modc emit %s --network scaled | FileCheck %s --check-prefix=SCALED
# SCALED:      network scaled: 4 -> 3, mass 2, sensitivity 1/2, 2 weights
# SCALED-NEXT:   compose {mass 2, sensitivity 1/2, 4 -> 3}
# SCALED-NEXT:     atom Linear(4, 4) #0 linear[0]
# SCALED-NEXT:     bond Mul(1/4) {mass 0, sensitivity 1/4, 4 -> 4}
# SCALED-NEXT:     atom Linear(3, 4) #1 linear[1]
# SCALED-NEXT:     bond Mul(2) {mass 0, sensitivity 2, 3 -> 3}

# A chain of + and - is one Add over a tuple; subtraction is Mul(-1), without a warning.
network sum = Linear(4, 4) + ReLU - Identity
# RUN: %modc emit %s --network sum 2>&1 | FileCheck %s --check-prefix=SUM
# SUM-NOT:     warning
# SUM:         network sum: 4 -> 4, mass 1, sensitivity 3, 1 weight
# SUM-NEXT:      compose {mass 1, sensitivity 3, 4 -> 4}
# SUM-NEXT:        tuple {mass 1, sensitivity 3, 4 -> (4, 4, 4)}
# SUM-NEXT:          atom Linear(4, 4) #0 linear
# SUM-NEXT:          bond ReLU
# SUM-NEXT:          compose {mass 0, sensitivity 1, 4 -> 4}
# SUM-NEXT:            bond Identity
# SUM-NEXT:            bond Mul(-1)
# SUM-NEXT:        bond Add {mass 0, sensitivity 1, (4, 4, 4) -> 4}

# M ^ 0 is Identity; M ^ n (n >= 1) a power of n copies with weights of their own.
network powers = (Linear(4, 4) ^ 3) @ (Linear(4, 4) ^ 1) @ (Linear(4, 4) ^ 0)
# RUN: %modc emit %s --network powers | FileCheck %s --check-prefix=POWERS
# POWERS:      network powers: 4 -> 4, mass 4, sensitivity 1, 4 weights
# POWERS-NEXT:   compose
# POWERS-NEXT:     bond Identity
# POWERS-NEXT:     power {mass 1, sensitivity 1, 4 -> 4}
# POWERS-NEXT:       atom Linear(4, 4) #0 linear[0]
# POWERS-NEXT:     power {mass 3, sensitivity 1, 4 -> 4}
# POWERS-NEXT:       atom Linear(4, 4) #1 linear[1]
# POWERS-NEXT:       atom Linear(4, 4) #2 linear[2]
# POWERS-NEXT:       atom Linear(4, 4) #3 linear[3]

# tare rescales every mass inside, keeping proportions; `mass =` sets an atom's mass. (The
# tared composition has no label, so it is merged into the network's composition.)
network tared = tare(Linear(4, 4, mass = 3) @ Linear(4, 4), mass = 2) @ Bias(4)
# RUN: %modc emit %s --network tared | FileCheck %s --check-prefix=TARE
# TARE:      network tared: 4 -> 4, mass 3, sensitivity 1, 3 weights
# TARE:        atom Bias(4) #0 bias shape [4] norm rms {mass 1,
# TARE-NEXT:   atom Linear(4, 4) #1 linear[0] {{.*}} {mass 1/2,
# TARE-NEXT:   atom Linear(4, 4) #2 linear[1] {{.*}} {mass 3/2,

# Every use of a module value makes new weights; a def labels its result; `as` at the call
# site wins; an unlabelled atom alone under a label takes the label's path; a labelled power
# numbers its copies, whose own label adds a level.
def twice(m) = m @ m
def layer(d) = ReLU @ Linear(d, d)
network paths = (layer(4) ^ 2 as layers) @ (twice(Linear(4, 4)) as pair) @ (Linear(4, 4) as first)
# RUN: %modc emit %s --network paths | FileCheck %s --check-prefix=PATHS
# PATHS: network paths: 4 -> 4, mass 5, sensitivity 1, 5 weights
# PATHS: #0 first shape
# PATHS: compose 'pair'
# PATHS: #1 pair.linear[0] shape
# PATHS: #2 pair.linear[1] shape
# PATHS: power 'layers'
# PATHS: #3 layers[0].layer shape
# PATHS: #4 layers[1].layer shape

# A user bond whose output size is an expression of its parameter; atom keyword `norm =`.
bond Widen(d: dim) : d -> 2 * d
network widen = Linear(3, 8, norm = spectral) @ Widen(4)
# RUN: %modc emit %s --network widen | FileCheck %s --check-prefix=WIDEN
# WIDEN: network widen: 4 -> 3, mass 1, sensitivity 1, 1 weight
# WIDEN: bond Widen(4) {mass 0, sensitivity 1, 4 -> 8}
# WIDEN: atom Linear(3, 8) #0 linear shape [3, 8] norm spectral

# Mistakes the reference describes.
# RUN: printf 'network n = Linear(4, 4, norm = rms)\n' > %t.rank.mod
# RUN: not %modc check %t.rank.mod 2>&1 | FileCheck %s --check-prefix=RANK
# RANK: error: norm 'rms' applies to vectors, but 'Linear(4, 4)' has a weight of shape [4, 4]
# RUN: printf 'network n = tare(ReLU, 1)\n' > %t.tare.mod
# RUN: not %modc check %t.tare.mod 2>&1 | FileCheck %s --check-prefix=TARE0
# TARE0: error: cannot tare a module of mass 0 to mass 1: it has no weights to give the mass to
# RUN: printf 'network n = Linear(4, 4) * Linear(4, 4)\n' > %t.mul.mod
# RUN: not %modc check %t.mul.mod 2>&1 | FileCheck %s --check-prefix=MUL
# MUL: error: cannot multiply two modules; compose them with '@'
# RUN: printf 'network n = ApplyAttentionScores @ Linear(4, 4)\n' > %t.pair.mod
# RUN: not %modc check %t.pair.mod 2>&1 | FileCheck %s --check-prefix=PAIR
# PAIR: error: modules do not fit: the next module expects a tuple of 2, but 'Linear(4, 4)' outputs 4 features
# RUN: printf 'def f(a) = g(a)\ndef g(a) = f(a)\nnetwork n = f(1)\n' > %t.rec.mod
# RUN: not %modc check %t.rec.mod 2>&1 | FileCheck %s --check-prefix=REC
# REC: error: 'f' is used inside its own definition ('f' -> 'g' -> 'f'); definitions cannot be recursive
