// modc::partition_file / partition_text (modc.hpp): compiler/backend/partition over the
// network's kernel plan.
#include <stdexcept>

#include "compiler/backend/partition.hpp"
#include "library/compile.hpp"
#include "library/modc.hpp"

namespace modc {

Partition partition_file(const std::string& path, int ranks, const CompileOptions& options) {
    return partition_text(path, read_source(path), ranks, options);
}

Partition partition_text(const std::string& name, const std::string& text, int ranks, const CompileOptions& options) {
    if (ranks < 1) throw CompileError("the number of ranks must be at least 1, not " + std::to_string(ranks));
    std::unique_ptr<Compilation> c = front_end(name, text, options);
    const DualPlan& plan = c->plans.front();
    kp::KernelPlan kernel_plan = lower_for(plan, options);
    kp::Partition computed = kp::partition(kernel_plan, ranks);
    Partition out;
    out.network = plan.network;
    out.schedule = kernel_plan.schedule;
    out.ranks = ranks;
    for (const auto& l : plan.leaves) out.weights.push_back({l.path, l.atom, l.shape, to_double(l.target), l.scale.value()});
    out.owner = computed.owner;
    out.cost = computed.cost;
    out.rank_cost = computed.rank_cost;
    out.imbalance = computed.imbalance;
    out.round_robin_imbalance = computed.round_robin_imbalance;
    out.best_imbalance = computed.best_imbalance;
    return out;
}

}  // namespace modc
