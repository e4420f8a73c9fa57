bond Twice : x -> x { sensitivity = 2 }
def layer(d: dim, k = 2 * d) = ReLU @ Linear(d, k) @ Linear(k, d) as hidden
network tiny(width = 8) = -layer(width) ^ 2 + 0.5e1 * Add @ (Identity, Twice,)
optimizer sgd(lr = 0.1) { W -= lr * dualize(grad); }

# The AST of a small input, in full: one line per node, with its position <line:col>.
# The printer lists atoms and bonds first, then defs and networks, then optimizers.
# Precedence shows in the tree: `^` binds tighter than unary minus, `*` tighter than `@`,
# `@` tighter than `+`, and `as` is loosest; `(a, b,)` is a tuple; optimizer blocks are
# parsed like the rest (`modc check` type-checks them). The input comes first so that
# positions stay put.
# RUN: %modc check %s
# RUN: %modc emit %s --emit ast | FileCheck %s --strict-whitespace --match-full-lines
# CHECK:Bond Twice <1:6>
# CHECK-NEXT:  Input
# CHECK-NEXT:    Name x <1:14>
# CHECK-NEXT:  Output
# CHECK-NEXT:    Name x <1:19>
# CHECK-NEXT:  Field sensitivity <1:23>
# CHECK-NEXT:    Number 2 <1:37>
# CHECK-NEXT:Def layer <2:5>
# CHECK-NEXT:  Param d: dim <2:11>
# CHECK-NEXT:  Param k <2:19>
# CHECK-NEXT:    Chain * <2:23>
# CHECK-NEXT:      Number 2 <2:23>
# CHECK-NEXT:      Name d <2:27>
# CHECK-NEXT:  Body
# CHECK-NEXT:    Named hidden <2:32>
# CHECK-NEXT:      Chain @ @ <2:32>
# CHECK-NEXT:        Name ReLU <2:32>
# CHECK-NEXT:        Call Linear <2:39>
# CHECK-NEXT:          Name d <2:46>
# CHECK-NEXT:          Name k <2:49>
# CHECK-NEXT:        Call Linear <2:54>
# CHECK-NEXT:          Name k <2:61>
# CHECK-NEXT:          Name d <2:64>
# CHECK-NEXT:Network tiny <3:9>
# CHECK-NEXT:  Param width <3:14>
# CHECK-NEXT:    Number 8 <3:22>
# CHECK-NEXT:  Body
# CHECK-NEXT:    Chain + <3:27>
# CHECK-NEXT:      Negate <3:27>
# CHECK-NEXT:        Power <3:28>
# CHECK-NEXT:          Call layer <3:28>
# CHECK-NEXT:            Name width <3:34>
# CHECK-NEXT:          Number 2 <3:43>
# CHECK-NEXT:      Chain @ <3:47>
# CHECK-NEXT:        Chain * <3:47>
# CHECK-NEXT:          Number 0.5e1 <3:47>
# CHECK-NEXT:          Name Add <3:55>
# CHECK-NEXT:        Tuple <3:61>
# CHECK-NEXT:          Name Identity <3:62>
# CHECK-NEXT:          Name Twice <3:72>
# CHECK-NEXT:Optimizer sgd <4:11>
# CHECK-NEXT:  Param lr <4:15>
# CHECK-NEXT:    Number 0.1 <4:20>
# CHECK-NEXT:  Statement W -= <4:27>
# CHECK-NEXT:    Chain * <4:32>
# CHECK-NEXT:      Name lr <4:32>
# CHECK-NEXT:      Call dualize <4:37>
# CHECK-NEXT:        Name grad <4:45>
# CHECK-NOT:{{.+}}
