# A field of an atom or bond without its '=', and a statement without '=', '-=' or '+='.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: syntax_missing_field_equals.mod:[[@LINE+3]]:25: error: expected '=', found '3'
# CHECK: syntax_missing_field_equals.mod:[[@LINE+3]]:17: error: expected '=', '-=' or '+=', found ':'
# CHECK-NOT: error:
atom A : x -> x { shape 3 }
optimizer o { w := 3 }
