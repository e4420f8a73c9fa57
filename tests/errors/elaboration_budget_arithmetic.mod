# Exact arithmetic on numbers of thousands of bits costs hundreds of microseconds a step: the
# work budget charges each operation by the size of its operands, so 2^60 of them stop as fast.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# RUN: sh -c 'timeout 10 %modc check %s >/dev/null 2>&1; test $? -eq 1'
# RUN: sh -c 'timeout 10 %modc explain %s >/dev/null 2>&1; test $? -eq 1'
# CHECK: elaboration_budget_arithmetic.mod:[[@LINE+4]]:9: error: network 'n' takes more than modc's limit of 32000000 steps to elaborate
# CHECK-NEXT: {{^}}network n = Linear(4, 4) * g60(1){{$}}
# CHECK: note: the limit is reached here
# CHECK-NOT: error:
network n = Linear(4, 4) * g60(1)
def g0(x) = x * 3^2500 / 5^1700 * 5^1700 / 3^2500
def g1(x) = g0(x) - g0(x) + x
def g2(x) = g1(x) - g1(x) + x
def g3(x) = g2(x) - g2(x) + x
def g4(x) = g3(x) - g3(x) + x
def g5(x) = g4(x) - g4(x) + x
def g6(x) = g5(x) - g5(x) + x
def g7(x) = g6(x) - g6(x) + x
def g8(x) = g7(x) - g7(x) + x
def g9(x) = g8(x) - g8(x) + x
def g10(x) = g9(x) - g9(x) + x
def g11(x) = g10(x) - g10(x) + x
def g12(x) = g11(x) - g11(x) + x
def g13(x) = g12(x) - g12(x) + x
def g14(x) = g13(x) - g13(x) + x
def g15(x) = g14(x) - g14(x) + x
def g16(x) = g15(x) - g15(x) + x
def g17(x) = g16(x) - g16(x) + x
def g18(x) = g17(x) - g17(x) + x
def g19(x) = g18(x) - g18(x) + x
def g20(x) = g19(x) - g19(x) + x
def g21(x) = g20(x) - g20(x) + x
def g22(x) = g21(x) - g21(x) + x
def g23(x) = g22(x) - g22(x) + x
def g24(x) = g23(x) - g23(x) + x
def g25(x) = g24(x) - g24(x) + x
def g26(x) = g25(x) - g25(x) + x
def g27(x) = g26(x) - g26(x) + x
def g28(x) = g27(x) - g27(x) + x
def g29(x) = g28(x) - g28(x) + x
def g30(x) = g29(x) - g29(x) + x
def g31(x) = g30(x) - g30(x) + x
def g32(x) = g31(x) - g31(x) + x
def g33(x) = g32(x) - g32(x) + x
def g34(x) = g33(x) - g33(x) + x
def g35(x) = g34(x) - g34(x) + x
def g36(x) = g35(x) - g35(x) + x
def g37(x) = g36(x) - g36(x) + x
def g38(x) = g37(x) - g37(x) + x
def g39(x) = g38(x) - g38(x) + x
def g40(x) = g39(x) - g39(x) + x
def g41(x) = g40(x) - g40(x) + x
def g42(x) = g41(x) - g41(x) + x
def g43(x) = g42(x) - g42(x) + x
def g44(x) = g43(x) - g43(x) + x
def g45(x) = g44(x) - g44(x) + x
def g46(x) = g45(x) - g45(x) + x
def g47(x) = g46(x) - g46(x) + x
def g48(x) = g47(x) - g47(x) + x
def g49(x) = g48(x) - g48(x) + x
def g50(x) = g49(x) - g49(x) + x
def g51(x) = g50(x) - g50(x) + x
def g52(x) = g51(x) - g51(x) + x
def g53(x) = g52(x) - g52(x) + x
def g54(x) = g53(x) - g53(x) + x
def g55(x) = g54(x) - g54(x) + x
def g56(x) = g55(x) - g55(x) + x
def g57(x) = g56(x) - g56(x) + x
def g58(x) = g57(x) - g57(x) + x
def g59(x) = g58(x) - g58(x) + x
def g60(x) = g59(x) - g59(x) + x
