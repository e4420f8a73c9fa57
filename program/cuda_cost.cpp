#include "program/cuda_cost.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace modc::cuda {

namespace {

std::string dims(const std::array<unsigned, 3>& d) {
    std::string s = std::to_string(d[0]);
    if (d[1] != 1 || d[2] != 1) s += "x" + std::to_string(d[1]);
    if (d[2] != 1) s += "x" + std::to_string(d[2]);
    return s;
}

OpCost matmul_cost(const Matmul& m, const Program& p, const Peaks& peaks) {
    OpCost c;
    const bool f32 = p.type == ElementType::F32;
    const std::int64_t wide = f32 ? 4 : 8;
    const std::int64_t in = holds_bf16(m.a, p.storage) ? 2 : wide, out = holds_bf16(m.c, p.storage) ? 2 : wide;
    // A X X^T reads X once (the second operand's tiles come from the L2 cache).
    const bool same = m.a.buffer == m.b.buffer && m.a.offset == m.b.offset && m.a.leaf == m.b.leaf;
    const double b = m.batch;
    const std::string t = f32 ? "S" : "D";
    double peak = f32 ? peaks.f32 : peaks.f64;
    c.precision = f32 ? "f32" : "f64";
    if (m.precision == kp::Precision::TF32) peak = peaks.tf32, c.precision = "tf32";
    if (m.precision == kp::Precision::BF16) peak = peaks.bf16, c.precision = "bf16";
    const std::int64_t beta_read = m.beta != 0 ? 1 : 0;
    switch (m.kind) {
        case Matmul::Kind::Syrk:  // C (n x n, one triangle) = op(A) op(A)^T, A n x k
            c.kind = "syrk";
            c.name = "cublas" + t + "syrk";
            c.shape = std::to_string(m.n) + " x " + std::to_string(m.n) + " x " + std::to_string(m.k);
            c.flops = double(m.n) * (m.n + 1) * m.k;
            c.read = std::int64_t(m.n) * m.k * in + beta_read * std::int64_t(m.n) * (m.n + 1) / 2 * wide;
            c.written = std::int64_t(m.n) * (m.n + 1) / 2 * wide;
            break;
        case Matmul::Kind::Symm: {  // C (m x n) = A B or B A, A symmetric (n x n on the right)
            const std::int64_t side = m.right ? m.n : m.m;
            c.kind = "symm";
            c.name = "cublas" + t + "symm";
            c.shape = std::to_string(m.m) + " x " + std::to_string(m.n) + " x " + std::to_string(side);
            c.flops = 2.0 * m.m * m.n * side;
            c.read = (side * side + std::int64_t(m.m) * m.n * (1 + beta_read)) * wide;
            c.written = std::int64_t(m.m) * m.n * wide;
            break;
        }
        case Matmul::Kind::Gemm:
            c.kind = m.batch > 1 ? "batched gemm" : "gemm";
            c.name = m.precision == kp::Precision::F32 ? "cublas" + t + "gemmStridedBatched" : "cublasGemmStridedBatchedEx";
            c.shape = std::to_string(m.m) + " x " + std::to_string(m.n) + " x " + std::to_string(m.k) +
                      (m.batch > 1 ? " x " + std::to_string(m.batch) : "");
            c.flops = 2.0 * m.m * m.n * m.k * b;
            c.read = static_cast<std::int64_t>(
                b * ((double(m.m) * m.k + (same ? 0.0 : double(m.k) * m.n)) * in + beta_read * double(m.m) * m.n * out));
            c.written = static_cast<std::int64_t>(b * m.m * m.n * out);
            break;
    }
    c.seconds = std::max(c.flops / peak, double(c.read + c.written) / peaks.bandwidth);
    return c;
}

}  // namespace

Cost cost(const Program& p, const Peaks& peaks) {
    Cost total;
    total.peaks = peaks;
    const bool f32 = p.type == ElementType::F32;
    for (std::size_t i = 0; i < p.ops.size(); ++i) {
        const Op& op = p.ops[i];
        OpCost c;
        if (const auto* l = std::get_if<Launch>(&op.what)) {
            c.kind = "kernel";
            c.name = l->kernel;
            c.shape = dims(l->grid) + " x " + dims(l->block);
            c.precision = f32 ? "f32" : "f64";
            c.flops = l->work.flops;
            c.read = l->work.read;
            c.written = l->work.written;
            c.seconds = std::max(c.flops / (f32 ? peaks.f32 : peaks.f64_cuda), double(c.read + c.written) / peaks.bandwidth);
            ++total.launches;
        } else if (const auto* h = std::get_if<Converged>(&op.what)) {
            c.kind = "host";
            c.name = "converged?";
            c.shape = std::to_string(h->count) + " flags";
            c.precision = "-";
            c.read = 4 * h->count;  // copied to the host
            ++total.checks;
        } else {
            c = matmul_cost(std::get<Matmul>(op.what), p, peaks);
            ++total.matmuls;
        }
        c.op = i;
        total.flops += c.flops;
        total.read += c.read;
        total.written += c.written;
        total.seconds += c.seconds;
        total.ops.push_back(std::move(c));
    }
    return total;
}

std::string print_cost(const Cost& cost) {
    std::ostringstream out;
    char line[512];
    out << "# op  kind          name                          shape                 precision      flops   bytes read  bytes written  modelled us\n";
    for (const auto& c : cost.ops) {
        std::snprintf(line, sizeof line, "%4zu  %-12s  %-28s  %-20s  %-9s  %10.4g  %11lld  %13lld  %11.3f\n", c.op, c.kind.c_str(),
                      c.name.c_str(), c.shape.c_str(), c.precision.c_str(), c.flops, static_cast<long long>(c.read),
                      static_cast<long long>(c.written), c.seconds * 1e6);
        out << line;
    }
    std::snprintf(line, sizeof line,
                  "total: %zu ops (%zu kernels, %zu cuBLAS calls, %zu host checks), %.6g flops, %lld bytes read, %lld written; "
                  "modelled %.3f ms on the %s\n",
                  cost.ops.size(), cost.launches, cost.matmuls, cost.checks, cost.flops, static_cast<long long>(cost.read),
                  static_cast<long long>(cost.written), cost.seconds * 1e3, cost.peaks.name.c_str());
    out << line;
    return out.str();
}

}  // namespace modc::cuda
