# With several networks, commands that need one ask for --network; a wrong name gets a suggestion.
# RUN: %modc check %s
# RUN: not %modc emit %s 2>&1 | FileCheck %s
# RUN: not %modc emit %s --network smal 2>&1 | FileCheck %s --check-prefix=NAME
# RUN: %modc emit %s --network small | FileCheck %s --check-prefix=PICKED
# CHECK: modc: error: the file defines several networks (small, large); choose one with --network NAME
# CHECK-NOT: error:
# NAME: modc: error: no network named 'smal'; did you mean 'small'?
# PICKED: network small:
network small = Linear(2, 2)
network large = Linear(4, 4) @ ReLU @ Linear(4, 4)
