#include "program/cuda_program.hpp"

#include <cstdio>
#include <sstream>

namespace modc::cuda {

const char* to_string(Buffer b) {
    switch (b) {
        case Buffer::X: return "X";
        case Buffer::Y: return "Y";
        case Buffer::A: return "A";
        case Buffer::AA: return "AA";
        case Buffer::B: return "B";
        case Buffer::Q: return "Q";
        case Buffer::T: return "T";
        case Buffer::Scratch: return "scratch";
        case Buffer::Xh: return "Xh";
        case Buffer::Yh: return "Yh";
        case Buffer::Ah: return "Ah";
        case Buffer::AAh: return "AAh";
        case Buffer::Bh: return "Bh";
        case Buffer::Qh: return "Qh";
        case Buffer::Th: return "Th";
        case Buffer::Grad: return "grad";
        case Buffer::Update: return "update";
    }
    return "?";
}

std::string CudaKernelNames::clear(std::size_t g) { return "g" + std::to_string(g) + "_clear"; }
std::string CudaKernelNames::sumsq(std::size_t g) { return "g" + std::to_string(g) + "_sumsq"; }
std::string CudaKernelNames::converged(std::size_t g) { return "g" + std::to_string(g) + "_converged"; }
std::string CudaKernelNames::maxabs(std::size_t g) { return "g" + std::to_string(g) + "_maxabs"; }
std::string CudaKernelNames::argmax(std::size_t g) { return "g" + std::to_string(g) + "_argmax"; }


namespace {

std::string fmt(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

std::string operand(const Operand& o, std::int64_t size) {
    if (o.buffer == Buffer::Grad || o.buffer == Buffer::Update)
        return std::string(to_string(o.buffer)) + "[" + std::to_string(o.leaf) + "]";
    std::string s = to_string(o.buffer);
    if (is_bf16(o.buffer)) size = 2;
    if (o.offset != 0) {
        if (o.buffer != Buffer::Scratch && o.offset % size == 0)
            s += " + " + std::to_string(o.offset / size);
        else
            s += " + " + std::to_string(o.offset) + " bytes";
    }
    return s;
}

std::string dims(const std::array<unsigned, 3>& d) {
    if (d[1] == 1 && d[2] == 1) return std::to_string(d[0]);
    return "(" + std::to_string(d[0]) + ", " + std::to_string(d[1]) + (d[2] != 1 ? ", " + std::to_string(d[2]) : "") + ")";
}

}  // namespace

std::string describe(const Op& op, ElementType type, Storage storage) {
    std::int64_t size = type == ElementType::F32 ? 4 : 8;
    std::string t = type == ElementType::F32 ? "S" : "D";
    std::ostringstream out;
    if (const auto* l = std::get_if<Launch>(&op.what)) {
        out << l->kernel << "<<<" << dims(l->grid) << ", " << dims(l->block) << ">>>(";
        for (std::size_t i = 0; i < l->args.size(); ++i) out << (i ? ", " : "") << operand(l->args[i], size);
        out << ")";
    } else if (const auto* c = std::get_if<Converged>(&op.what)) {
        out << "host: if the " << c->count << " flags at " << operand(c->done, size) << " are all set, go on at op "
            << c->resume;
    } else {
        const auto& m = std::get<Matmul>(op.what);
        auto num = [](double v) { return fmt("%g", v); };
        switch (m.kind) {
            case Matmul::Kind::Syrk:
                out << "cublas" << t << "syrk(" << (m.lower ? "lower" : "upper") << ", " << (m.trans_a ? "T" : "N")
                    << ", n=" << m.n << ", k=" << m.k << ", " << num(m.alpha) << ", " << operand(m.a, size) << ", lda=" << m.lda
                    << ", " << num(m.beta) << ", " << operand(m.c, size) << ", ldc=" << m.ldc << ")";
                break;
            case Matmul::Kind::Symm:
                out << "cublas" << t << "symm(" << (m.right ? "right" : "left") << ", " << (m.lower ? "lower" : "upper")
                    << ", m=" << m.m << ", n=" << m.n << ", " << num(m.alpha) << ", " << operand(m.a, size) << ", lda=" << m.lda
                    << ", " << operand(m.b, size) << ", ldb=" << m.ldb << ", " << num(m.beta) << ", " << operand(m.c, size)
                    << ", ldc=" << m.ldc << ")";
                break;
            case Matmul::Kind::Gemm:
                if (m.precision != kp::Precision::F32) {
                    const char* in = m.precision == kp::Precision::BF16 ? "CUDA_R_16BF" : "CUDA_R_32F";
                    out << "cublasGemmStridedBatchedEx(" << (m.trans_a ? "T" : "N") << ", " << (m.trans_b ? "T" : "N")
                        << ", m=" << m.m << ", n=" << m.n << ", k=" << m.k << ", " << num(m.alpha) << ", " << operand(m.a, size)
                        << ", " << in << ", lda=" << m.lda << ", " << m.stride_a << ", " << operand(m.b, size) << ", " << in
                        << ", ldb=" << m.ldb << ", " << m.stride_b << ", " << num(m.beta) << ", " << operand(m.c, size)
                        << (holds_bf16(m.c, storage) ? ", CUDA_R_16BF" : ", CUDA_R_32F") << ", ldc=" << m.ldc << ", " << m.stride_c << ", batch=" << m.batch << ", "
                        << (m.precision == kp::Precision::BF16 ? "CUBLAS_COMPUTE_32F" : "CUBLAS_COMPUTE_32F_FAST_TF32") << ")";
                    break;
                }
                out << "cublas" << t << "gemmStridedBatched(" << (m.trans_a ? "T" : "N") << ", " << (m.trans_b ? "T" : "N")
                    << ", m=" << m.m << ", n=" << m.n << ", k=" << m.k << ", " << num(m.alpha) << ", " << operand(m.a, size)
                    << ", lda=" << m.lda << ", " << m.stride_a << ", " << operand(m.b, size) << ", ldb=" << m.ldb << ", "
                    << m.stride_b << ", " << num(m.beta) << ", " << operand(m.c, size) << ", ldc=" << m.ldc << ", "
                    << m.stride_c << ", batch=" << m.batch << ")";
                break;
        }
    }
    if (!op.note.empty()) out << "    // " << op.note;
    return out.str();
}

}  // namespace modc::cuda
