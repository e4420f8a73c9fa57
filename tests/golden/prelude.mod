# Every standard atom and bond of prelude/prelude.mod, used once, and the tables of
# docs/language.md that describe them.
network atoms = Gain(2) @ Bias(2) @ Conv2D(2, 4, 3) @ Embed(4, 3) @ Linear(3, 5)
network bonds = Identity @ (Identity, ReLU, GELU, Softmax(1/2), SplitIntoHeads(2), MergeHeads,
                            CausalMask, AvgPool, LayerNorm, RMSNorm, Mul(3), Mul(-2),
                            Identity, Flatten @ Identity) @ Linear(6, 6)
network pairs = Add @ (ApplyAttentionScores @ (Identity, AttentionQK @ Rope(4) @ (Identity, Identity)),
                       Identity) @ Linear(6, 6)

# docs/language.md lists the standard atoms and bonds; its tables are generated from
# prelude/prelude.mod and must not fall behind it (fix: python3 scripts/prelude_table.py --write).
# RUN: python3 %S/../../scripts/prelude_table.py --check
#
# Every standard atom and bond, instantiated: the mass, sensitivity, norm, weight shape and
# feature sizes that the tables of docs/language.md state.
# RUN: %modc emit %s --network atoms | FileCheck %s --check-prefix=ATOMS
# RUN: %modc emit %s --network bonds 2>&1 | FileCheck %s --check-prefix=BONDS
# RUN: %modc emit %s --network pairs | FileCheck %s --check-prefix=PAIRS
#
# ATOMS:      atom Linear(3, 5) #0 linear shape [3, 5] norm rms_to_rms {mass 1, sensitivity 1, 5 -> 3}
# ATOMS-NEXT: atom Embed(4, 3) #1 embed shape [4, 3] norm l1_to_rms {mass 1, sensitivity 1, 3 -> 4}
# ATOMS-NEXT: atom Conv2D(2, 4, 3) #2 conv2d shape [2, 4, 3, 3] norm conv_rms_to_rms {mass 1, sensitivity 1, 4 -> 2}
# ATOMS-NEXT: atom Bias(2) #3 bias shape [2] norm rms {mass 1, sensitivity 1, 2 -> 2}
# ATOMS-NEXT: atom Gain(2) #4 gain shape [2] norm linf {mass 1, sensitivity 1, 2 -> 2}
#
# BONDS:      warning: 'Mul(-2)' scales by the negative number -2: it flips the sign of its output, and its sensitivity is taken as |-2| = 2
# BONDS:      network bonds: 6 -> (6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, ?), mass 1, sensitivity 33/2, 1 weight
# BONDS:      bond Identity {mass 0, sensitivity 1, 6 -> 6}
# BONDS-NEXT: bond ReLU {mass 0, sensitivity 1, 6 -> 6}
# BONDS-NEXT: bond GELU {mass 0, sensitivity 1, 6 -> 6}
# BONDS-NEXT: bond Softmax(1/2) {mass 0, sensitivity 1/2, 6 -> 6}
# BONDS-NEXT: bond SplitIntoHeads(2) {mass 0, sensitivity 1, 6 -> 6}
# BONDS-NEXT: bond MergeHeads {mass 0, sensitivity 1, 6 -> 6}
# BONDS-NEXT: bond CausalMask {mass 0, sensitivity 1, 6 -> 6}
# BONDS-NEXT: bond AvgPool {mass 0, sensitivity 1, 6 -> 6}
# BONDS-NEXT: bond LayerNorm {mass 0, sensitivity 1, 6 -> 6}
# BONDS-NEXT: bond RMSNorm {mass 0, sensitivity 1, 6 -> 6}
# BONDS-NEXT: bond Mul(3) {mass 0, sensitivity 3, 6 -> 6}
# BONDS-NEXT: bond Mul(-2) {mass 0, sensitivity 2, 6 -> 6}
# BONDS-NEXT: bond Identity {mass 0, sensitivity 1, 6 -> 6}
# BONDS-NEXT: compose {mass 0, sensitivity 1, 6 -> ?}
# BONDS-NEXT:   bond Identity
# BONDS-NEXT:   bond Flatten {mass 0, sensitivity 1, 6 -> ?}
#
# PAIRS:      bond Rope(4) {mass 0, sensitivity 1, (6, 6) -> (6, 6)}
# PAIRS:      bond AttentionQK {mass 0, sensitivity 1, (6, 6) -> ?}
# PAIRS:      bond ApplyAttentionScores {mass 0, sensitivity 1, (6, ?) -> 6}
# PAIRS:      bond Add {mass 0, sensitivity 1, (6, 6) -> 6}
