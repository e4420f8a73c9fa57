# Comparisons give masks in optimizer blocks; in a network or def they are an error, located.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: comparison_in_network.mod:[[@LINE+1]]:22: error: comparisons ('<') are allowed in optimizer blocks only
network n = Linear(2 < 3, 4)
