#include "compiler/backend/codegen_llvm.hpp"

#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "compiler/backend/llvm_emitter.hpp"
#include "support/diagnostics.hpp"

namespace modc {

namespace {

using namespace llvm_emitter;

class DualizerEmitter : public Emitter {
public:
    using Emitter::Emitter;

    void group(const kp::Group& g, std::size_t gi) {
        bool orthogonal = orthogonalizes(g.map);
        if (orthogonal) {
            for (std::size_t s = 0; s < g.steps.size(); ++s) {
                const auto& step = g.steps[s];
                if (step.kind == kp::StepKind::Normalize || step.kind == kp::StepKind::SvdPolar) normalize(g, gi, step);
                if (step.kind == kp::StepKind::NewtonSchulz || step.kind == kp::StepKind::IterateToConvergence) {
                    poly(g, KernelNames::poly(gi, s), step.coeffs);
                    if (!g.gram) axpy(g, KernelNames::axpy(gi, s), step.coeffs.a);
                }
                if (step.kind == kp::StepKind::IterateToConvergence) change(g, gi);
            }
            symmetrize(g, gi);
            for (std::size_t j = 0; j < g.members.size(); ++j) finish(g, gi, j);
        } else {
            for (std::size_t j = 0; j < g.members.size(); ++j) closed(g, gi, j);
        }
    }

private:
    // Offset of element (o, c) of kernel position `slice` in a [rows, cols, slices] tensor.
    Value* grad_index(const kp::Group& g, Value* o, Value* c, Value* slice) {
        return b_.CreateAdd(b_.CreateMul(idx(o, g.cols, c), i64(g.slices)), slice);
    }
    // The gradient slice and X share one layout: a flat loop does.
    static bool contiguous(const kp::Group& g) { return g.slices == 1 && !g.transpose; }

    // for (i, j) in [0, n) x [0, m): body(i, j), in tiles of tile_n x tile_m (cut at the edges),
    // j fastest within a tile.
    void tiled(std::int64_t n, std::int64_t m, std::int64_t tile_n, std::int64_t tile_m,
               const std::function<void(Value*, Value*)>& body) {
        auto range = [&](std::int64_t count, std::int64_t tile, Value* t, const std::function<void(Value*)>& each) {
            Value* from = b_.CreateMul(t, i64(tile));
            Value* end = b_.CreateAdd(from, i64(tile));
            loop(from, b_.CreateSelect(b_.CreateICmpSLT(end, i64(count)), end, i64(count)), each);
        };
        loop((n + tile_n - 1) / tile_n, [&](Value* ti) {
            loop((m + tile_m - 1) / tile_m, [&](Value* tj) {
                range(n, tile_n, ti, [&](Value* i) { range(m, tile_m, tj, [&](Value* j) { body(i, j); }); });
            });
        });
    }

    // The 8 x 8 transpose of eight <8 x T> rows, in three rounds of two-input shuffles: round b
    // (4, 2, 1) swaps the b x b blocks off the diagonal of every 2b x 2b block.
    static constexpr unsigned kBlock = 8;
    std::vector<Value*> transpose_block(std::vector<Value*> rows) {
        for (unsigned b = kBlock / 2; b >= 1; b /= 2) {
            std::vector<int> first, second;  // lanes of rows k and k + b; 8 + l: lane l of row k + b
            for (unsigned j = 0; j < kBlock; ++j) {
                first.push_back(static_cast<int>(j & b ? kBlock + j - b : j));
                second.push_back(static_cast<int>(j & b ? kBlock + j : j + b));
            }
            for (unsigned k = 0; k < kBlock; ++k) {
                if (k & b) continue;
                Value *top = rows[k], *bottom = rows[k + b];
                rows[k] = b_.CreateShuffleVector(top, bottom, first);
                rows[k + b] = b_.CreateShuffleVector(top, bottom, second);
            }
        }
        return rows;
    }

    // For a transposed group of one slice: the rows x cols gradient (or update) and X, its
    // transpose, copied one into the other. block(o0, c0) moves the 8 x 8 block at (o0, c0),
    // reading and writing rows of 8 on both sides (transpose_block between); element(o, c) the
    // edges left over where rows or cols is not a multiple of 8. The blocks go in tiles of
    // x_rows x grad_rows (o fastest), so that the lines a tile touches stay in cache (and their
    // pages in the TLB) from one block to the next. An element by element copy misses the cache
    // on every element on the side it strides, and vectorized it scatters or gathers.
    void transpose_by_blocks(const kp::Group& g, std::int64_t x_rows, std::int64_t grad_rows,
                             const std::function<void(Value*, Value*)>& block,
                             const std::function<void(Value*, Value*)>& element) {
        const std::int64_t rows = g.rows / kBlock * kBlock, cols = g.cols / kBlock * kBlock;
        tiled(cols / kBlock, rows / kBlock, x_rows / kBlock, grad_rows / kBlock, [&](Value* bc, Value* bo) {
            block(b_.CreateMul(bo, i64(kBlock)), b_.CreateMul(bc, i64(kBlock)));
        });
        auto edge = [&](std::int64_t o_from, std::int64_t o_to, std::int64_t c_from) {
            loop(i64(o_from), i64(o_to), [&](Value* o) { loop(i64(c_from), i64(g.cols), [&](Value* c) { element(o, c); }); });
        };
        if (rows < g.rows) edge(rows, g.rows, 0);  // the last rows, whole
        if (cols < g.cols) edge(0, rows, cols);    // the last columns of the rows above
    }
    // Row k of a block: the <8 x T> at base + (first + k) * stride + offset.
    Value* block_row(Value* base, Value* first, unsigned k, std::int64_t stride, Value* offset) {
        return load_lanes(base, idx(b_.CreateAdd(first, i64(k)), stride, offset), kBlock);
    }
    void store_block_row(Value* v, Value* base, Value* first, unsigned k, std::int64_t stride, Value* offset) {
        auto* type = llvm::cast<llvm::FixedVectorType>(v->getType());
        Value* where = b_.CreateBitCast(at(base, idx(b_.CreateAdd(first, i64(k)), stride, offset)),
                                        llvm::PointerType::getUnqual(type));
        b_.CreateAlignedStore(v, where, llvm::Align(t_->getPrimitiveSizeInBits() / 8));
    }
    // Visits each element (o, c) of a group's gradient slice, row by row (X, untransposed, too),
    // or, for transposed groups of several slices, in 32 x 32 tiles along X's rows (o fastest: X
    // contiguous, the gradient strided by cols * slices; the other way round, strided stores
    // become scatters, 10x slower).
    void each_element(const kp::Group& g, const std::function<void(Value*, Value*)>& body) {
        if (g.transpose) {
            tiled(g.cols, g.rows, 32, 32, [&](Value* c, Value* o) { body(o, c); });
            return;
        }
        loop(g.rows, [&](Value* o) { loop(g.cols, [&](Value* c) { body(o, c); }); });
    }
    Value* x_index(const kp::Group& g, Value* o, Value* c) {
        return g.transpose ? idx(c, g.rows, o) : idx(o, g.cols, c);
    }

    void normalize(const kp::Group& g, std::size_t gi, const kp::Step& step) {
        begin(KernelNames::normalize(gi), b_.getVoidTy(), {ptr_, ptr_, i64_});
        Value *grad = arg(0), *x = arg(1), *slice = arg(2);
        Elements each = [&](const std::function<void(Value*)>& f) {
            if (g.slices == 1)
                loop(g.rows * g.cols, [&](Value* i) { f(load(grad, i)); });
            else
                loop(g.rows, [&](Value* o) { loop(g.cols, [&](Value* c) { f(load(grad, grad_index(g, o, c, slice))); }); });
        };
        Value* ss = sum_of_squares(g.rows * g.cols, [&](Value* first, unsigned width) {
            if (g.slices == 1) return load_lanes(grad, first, width);
            // Element e of the slice lies at e * slices + slice.
            Value* v = llvm::UndefValue::get(llvm::FixedVectorType::get(t_, width));
            for (unsigned k = 0; k < width; ++k) {
                Value* e = b_.CreateAdd(first, i64(k));
                v = b_.CreateInsertElement(v, load(grad, b_.CreateAdd(b_.CreateMul(e, i64(g.slices)), slice)), k);
            }
            return v;
        });
        Value* denom = add(mul(norm2(ss, each), wide(step.norm_scale)), wide(step.eps));
        Value* inv = safe_inverse(denom);
        if (contiguous(g)) {
            loop(g.rows * g.cols, [&](Value* i) { store(narrow(mul(widen(load(grad, i)), inv)), x, i); });
            b_.CreateRetVoid();
            return;
        }
        auto element = [&](Value* o, Value* c) {
            store(narrow(mul(widen(load(grad, grad_index(g, o, c, slice))), inv)), x, x_index(g, o, c));
        };
        if (g.transpose && g.slices == 1) {
            // The same arithmetic per element, eight at a time. Tiles of 8 rows of X (one block)
            // by 32 of the gradient: X's rows lie rows * sizeof(T) apart, for 3072 rows a multiple
            // of 4 KiB, so that all of them share one set of the L1 cache; 32 rows of X written at
            // once, 8 ways, thrashed it (3072 x 768 f32, one thread: 1.7 ms against 0.66 ms).
            Value* inv_lanes = b_.CreateVectorSplat(kBlock, inv);
            transpose_by_blocks(g, kBlock, 32, [&](Value* o0, Value* c0) {
                std::vector<Value*> rows;
                for (unsigned k = 0; k < kBlock; ++k)
                    rows.push_back(narrow_lanes(mul(widen_lanes(block_row(grad, o0, k, g.cols, c0)), inv_lanes)));
                std::vector<Value*> cols = transpose_block(rows);
                for (unsigned k = 0; k < kBlock; ++k) store_block_row(cols[k], x, c0, k, g.rows, o0);
            }, element);
        } else {
            each_element(g, element);
        }
        b_.CreateRetVoid();
    }

    // Copies A's upper triangle into its lower one in 8 x 8 blocks (rows of 8 read and written,
    // transpose_block between): block (bi, bj) above the diagonal into (bj, bi), in tiles of 4 x 4
    // blocks, within which the rows the stores go to stay in cache for the next block; the
    // diagonal blocks keep their upper halves; rows past the last whole block element by element.
    void symmetrize(const kp::Group& g, std::size_t gi) {
        begin(KernelNames::symmetrize(gi), b_.getVoidTy(), {ptr_});
        const std::int64_t m = g.small(), whole = m / kBlock * kBlock, blocks = whole / kBlock;
        const std::int64_t per_tile = 4, tiles = (blocks + per_tile - 1) / per_tile;
        Value* a = arg(0);
        auto first_of = [&](Value* block) { return b_.CreateMul(block, i64(kBlock)); };
        loop(blocks, [&](Value* b) {
            Value* i0 = first_of(b);
            std::vector<Value*> rows;
            for (unsigned k = 0; k < kBlock; ++k) rows.push_back(block_row(a, i0, k, m, i0));
            std::vector<Value*> cols = transpose_block(rows);
            for (unsigned k = 0; k < kBlock; ++k) {
                std::vector<int> lower_from_cols;  // lanes left of the diagonal from the transpose
                for (unsigned l = 0; l < kBlock; ++l) lower_from_cols.push_back(static_cast<int>(l < k ? kBlock + l : l));
                store_block_row(b_.CreateShuffleVector(rows[k], cols[k], lower_from_cols), a, i0, k, m, i0);
            }
        });
        auto at_most = [&](Value* v, std::int64_t limit) {
            return b_.CreateSelect(b_.CreateICmpSLT(v, i64(limit)), v, i64(limit));
        };
        loop(tiles, [&](Value* ti) {
            loop(ti, i64(tiles), [&](Value* tj) {
                Value* bi0 = b_.CreateMul(ti, i64(per_tile));
                Value* bj0 = b_.CreateMul(tj, i64(per_tile));
                loop(bi0, at_most(b_.CreateAdd(bi0, i64(per_tile)), blocks), [&](Value* bi) {
                    Value* next = b_.CreateAdd(bi, i64(1));
                    Value* from = b_.CreateSelect(b_.CreateICmpSGT(next, bj0), next, bj0);
                    loop(from, at_most(b_.CreateAdd(bj0, i64(per_tile)), blocks), [&](Value* bj) {
                        Value *i0 = first_of(bi), *j0 = first_of(bj);
                        std::vector<Value*> rows;
                        for (unsigned k = 0; k < kBlock; ++k) rows.push_back(block_row(a, i0, k, m, j0));
                        std::vector<Value*> cols = transpose_block(rows);
                        for (unsigned k = 0; k < kBlock; ++k) store_block_row(cols[k], a, j0, k, m, i0);
                    });
                });
            });
        });
        loop(i64(whole), i64(m), [&](Value* j) {
            loop(i64(0), j, [&](Value* i) { store(load(a, idx(i, m, j)), a, idx(j, m, i)); });
        });
        b_.CreateRetVoid();
    }

    void poly(const kp::Group& g, const std::string& name, const kp::Coeffs& k) {
        begin(name, b_.getVoidTy(), {ptr_, ptr_, ptr_});
        std::int64_t m = g.small();
        Value *out = arg(0), *a = arg(1), *aa = arg(2);
        loop(m, [&](Value* i) {
            loop(i, i64(m), [&](Value* j) {
                Value* v = mul(real(k.b), load(a, idx(i, m, j)));
                if (k.c != 0) v = add(v, mul(real(k.c), load(aa, idx(i, m, j))));
                store(v, out, idx(i, m, j));
            });
        });
        // Gram Newton-Schulz needs the whole polynomial P = a I + b A + c A A.
        if (g.gram) loop(m, [&](Value* i) { store(add(load(out, idx(i, m, i)), real(k.a)), out, idx(i, m, i)); });
        b_.CreateRetVoid();
    }

    void axpy(const kp::Group& g, const std::string& name, double a) {
        begin(name, b_.getVoidTy(), {ptr_, ptr_});
        Value *y = arg(0), *x = arg(1);
        loop(g.small() * g.large(), [&](Value* i) { store(mul(real(a), load(x, i)), y, i); });
        b_.CreateRetVoid();
    }

    void change(const kp::Group& g, std::size_t gi) {
        begin(KernelNames::change(gi), b_.getDoubleTy(), {ptr_, ptr_});
        Value *x = arg(0), *y = arg(1);
        // In double: the squares of an f32 X of 1e-31 (a gradient of 1e-38 over ||G|| + eps)
        // underflow to zero, which would read as converged after one step.
        std::vector<Value*> sums = lane_sums(g.small() * g.large(), 2, [&](Value* first, unsigned width) {
            Value* xv = widen_lanes(load_lanes(x, first, width));
            Value* d = b_.CreateFSub(widen_lanes(load_lanes(y, first, width)), xv);
            return std::vector<Value*>{mul(d, d), mul(xv, xv)};
        });
        b_.CreateRet(b_.CreateFMul(sqrt(sums[0]), safe_inverse(sqrt(sums[1]))));
    }

    void finish(const kp::Group& g, std::size_t gi, std::size_t j) {
        begin(KernelNames::finish(gi, j), b_.getVoidTy(), {ptr_, ptr_, i64_});
        Value *update = arg(0), *x = arg(1), *slice = arg(2);
        Value* scale = real(g.members[j].scale);
        if (contiguous(g)) {
            loop(g.rows * g.cols, [&](Value* i) { store(mul(scale, load(x, i)), update, i); });
            b_.CreateRetVoid();
            return;
        }
        auto element = [&](Value* o, Value* c) {
            store(mul(scale, load(x, x_index(g, o, c))), update, grad_index(g, o, c, slice));
        };
        if (g.transpose && g.slices == 1) {
            // Reading X (not writing it), 32 x 32 tiles measure best (0.55 ms, 3072 x 768 f32).
            Value* scale_lanes = b_.CreateVectorSplat(kBlock, scale);
            transpose_by_blocks(g, 32, 32, [&](Value* o0, Value* c0) {
                std::vector<Value*> cols;
                for (unsigned k = 0; k < kBlock; ++k) cols.push_back(mul(scale_lanes, block_row(x, c0, k, g.rows, o0)));
                std::vector<Value*> rows = transpose_block(cols);
                for (unsigned k = 0; k < kBlock; ++k) store_block_row(rows[k], update, o0, k, g.cols, c0);
            }, element);
        } else {
            each_element(g, element);
        }
        b_.CreateRetVoid();
    }


    void closed(const kp::Group& g, std::size_t gi, std::size_t j) {
        begin(KernelNames::closed(gi, j), b_.getVoidTy(), {ptr_, ptr_, ptr_});
        Value *update = arg(0), *grad = arg(1), *scratch = arg(2);
        Value* scale = real(g.members[j].scale);
        std::int64_t n = g.elements();
        switch (g.map) {
            case MapKind::NormalizeColumns: {
                // sums[c] = sum over rows of g[o, c]^2 (scratch holds cols doubles), then each
                // column scaled by 1/sqrt.
                Value* sums = b_.CreateBitCast(scratch, llvm::PointerType::getUnqual(acc_));
                auto sum_at = [&](Value* c) { return b_.CreateGEP(acc_, sums, c); };
                loop(g.cols, [&](Value* c) { b_.CreateStore(wide(0), sum_at(c)); });
                loop(g.rows, [&](Value* o) {
                    loop(g.cols, [&](Value* c) { add_square(sum_at(c), load(grad, idx(o, g.cols, c))); });
                });
                loop(g.cols, [&](Value* c) {
                    Elements column = [&](const std::function<void(Value*)>& f) {
                        loop(g.rows, [&](Value* o) { f(load(grad, idx(o, g.cols, c))); });
                    };
                    Value* norm = norm2(b_.CreateLoad(acc_, sum_at(c)), column);
                    b_.CreateStore(mul(wide(g.members[j].scale), safe_inverse(norm)), sum_at(c));
                });
                loop(g.rows, [&](Value* o) {
                    loop(g.cols, [&](Value* c) {
                        Value* v = mul(widen(load(grad, idx(o, g.cols, c))), b_.CreateLoad(acc_, sum_at(c)));
                        store(narrow(v), update, idx(o, g.cols, c));
                    });
                });
                break;
            }
            case MapKind::NormalizeRows: {
                loop(g.rows, [&](Value* o) {
                    Elements row = [&](const std::function<void(Value*)>& f) {
                        loop(g.cols, [&](Value* c) { f(load(grad, idx(o, g.cols, c))); });
                    };
                    Value* ss = sum_of_squares(g.cols, [&](Value* first, unsigned width) {
                        return load_lanes(grad, b_.CreateAdd(b_.CreateMul(o, i64(g.cols)), first), width);
                    });
                    Value* factor = mul(wide(g.members[j].scale), safe_inverse(norm2(ss, row)));
                    loop(g.cols, [&](Value* c) {
                        store(narrow(mul(widen(load(grad, idx(o, g.cols, c))), factor)), update, idx(o, g.cols, c));
                    });
                });
                break;
            }
            case MapKind::Normalize: {
                Elements all = [&](const std::function<void(Value*)>& f) { loop(n, [&](Value* i) { f(load(grad, i)); }); };
                Value* ss = sum_of_squares(n, [&](Value* first, unsigned width) { return load_lanes(grad, first, width); });
                Value* factor = mul(wide(g.members[j].scale), safe_inverse(norm2(ss, all)));
                loop(n, [&](Value* i) { store(narrow(mul(widen(load(grad, i)), factor)), update, i); });
                break;
            }
            case MapKind::Sign:
                loop(n, [&](Value* i) { store(mul(scale, sign(load(grad, i))), update, i); });
                break;
            case MapKind::MaxCoordinate: {
                // The first coordinate of largest magnitude gets scale * its sign; the rest 0.
                Value* best = accumulator(real(-1));
                llvm::IRBuilder<> entry(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
                Value* where = entry.CreateAlloca(i64_);
                b_.CreateStore(i64(0), where);
                // An ordered search: no reassociation here.
                llvm::FastMathFlags saved = b_.getFastMathFlags();
                b_.setFastMathFlags(llvm::FastMathFlags());
                loop(n, [&](Value* i) {
                    Value* mag = b_.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, load(grad, i));
                    Value* better = b_.CreateFCmpOGT(mag, get(best));
                    b_.CreateStore(b_.CreateSelect(better, mag, get(best)), best);
                    b_.CreateStore(b_.CreateSelect(better, i, b_.CreateLoad(i64_, where)), where);
                    store(real(0), update, i);
                });
                Value* w = b_.CreateLoad(i64_, where);
                store(mul(scale, sign(load(grad, w))), update, w);
                b_.setFastMathFlags(saved);
                break;
            }
            default: MODC_ASSERT(false, "not a closed-form map");
        }
        b_.CreateRetVoid();
    }
};

}  // namespace


LlvmModule codegen_llvm(const kp::KernelPlan& plan, ElementType type) {
    LlvmModule out = empty_module("modc_" + plan.network + "_" + to_string(type));
    for (std::size_t g = 0; g < plan.groups.size(); ++g) DualizerEmitter(*out.module, type).group(plan.groups[g], g);
    return verified(std::move(out));
}

std::string print_llvm(LlvmModule m) {
    std::string text;
    llvm::raw_string_ostream os(text);
    m.module->print(os, nullptr);
    return os.str();
}

namespace llvm_emitter {

LlvmModule empty_module(const std::string& name) {
    LlvmModule out;
    out.context = std::make_unique<llvm::LLVMContext>();
    out.module = std::make_unique<llvm::Module>(name, *out.context);
    return out;
}

LlvmModule verified(LlvmModule m) {
    std::string errors;
    llvm::raw_string_ostream es(errors);
    MODC_ASSERT(!llvm::verifyModule(*m.module, &es), "generated LLVM IR does not verify: " + es.str());
    return m;
}

}  // namespace llvm_emitter

}  // namespace modc
