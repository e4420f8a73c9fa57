# A norm for vectors on a matrix weight, and one for matrices on a vector.
# RUN: not %modc check %s 2>&1 | FileCheck %s
# CHECK: norm_rank.mod:[[@LINE+7]]:33: error: norm 'rms' applies to vectors, but 'Linear(4, 4)' has a weight of shape [4, 4]
# CHECK-NEXT: {{^}}network a = Linear(4, 4, norm = rms){{$}}
# CHECK-NEXT: {{^}}                                ^~~{{$}}
# CHECK: norm_rank.mod:[[@LINE+5]]:13: error: norm 'spectral' applies to matrices, but 'Vec(3)' has a weight of shape [3]
# CHECK: norm_rank.mod:[[@LINE+5]]:28: error: norm 'conv_rms_to_rms' applies to convolution kernels, but 'Bias(4)' has a weight of shape [4]
# CHECK-NOT: error:
atom Vec(d) : d -> d { shape = d; norm = spectral }
network a = Linear(4, 4, norm = rms)
network b = Vec(3)
network c = Bias(4, norm = conv_rms_to_rms)
