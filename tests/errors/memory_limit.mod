# Before allocating, bench, dualize and step estimate the memory they need (work buffers sized
# from the kernel plan, gradients and updates, an optimizer's weights and state) and refuse,
# naming both sizes, what would not fit the limit: half of the physical memory, or
# --memory-limit (issue 15). This network needs 260.8 GiB; it used to die of std::bad_alloc.
# RUN: not %modc bench %s 2>&1 | FileCheck %s --check-prefix=DEFAULT
# DEFAULT: modc: error: network 'm' needs about 260.8 GiB of memory (work buffers 186.3 GiB, gradients and updates 74.5 GiB), more than the limit of {{[0-9.]+ [KMGT]iB}} (half of this machine's {{[0-9.]+ [KMGT]iB}}); --memory-limit or CompileOptions::memory_limit sets it
# RUN: sh -c 'timeout 10 %modc bench %s 2>/dev/null; test $? -eq 1'
# RUN: not %modc bench %s --memory-limit 100G 2>&1 | FileCheck %s --check-prefix=SET
# SET: modc: error: network 'm' needs about 260.8 GiB of memory ({{.*}}), more than the limit of 100.0 GiB; --memory-limit or CompileOptions::memory_limit sets it
# RUN: not %modc bench %s --dtype f64 --memory-limit 100G 2>&1 | FileCheck %s --check-prefix=F64
# F64: needs about 521.5 GiB of memory (work buffers 372.5 GiB, gradients and updates 149.0 GiB)
# The examples fit in a few MiB, and a limit is bytes or a number with K, M, G or T.
# RUN: not %modc bench %examples/mlp.mod --memory-limit 1M 2>&1 | FileCheck %s --check-prefix=MLP
# MLP: modc: error: network 'mlp' needs about {{[0-9.]+}} MiB of memory (work buffers {{[0-9.]+}} MiB, gradients and updates 2.1 MiB), more than the limit of 1.0 MiB;
# RUN: %modc bench %examples/mlp.mod --memory-limit 64M --runs 1 --warmup 0 | FileCheck %s --check-prefix=FITS
# FITS: network mlp (3 weights
# RUN: %modc bench %examples/mlp.mod --memory-limit 67108864 --runs 1 --warmup 0 | FileCheck %s --check-prefix=FITS
# RUN: not %modc bench %examples/mlp.mod --memory-limit 12X 2>&1 | FileCheck %s --check-prefix=BAD
# RUN: not %modc bench %examples/mlp.mod --memory-limit 0 2>&1 | FileCheck %s --check-prefix=BAD
# BAD: modc: error: --memory-limit expects BYTES, or a number with K, M, G or T (1024s): 512M, 8G; got
network m = Linear(100000, 100000)
