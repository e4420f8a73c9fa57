#include "compiler/backend/partition.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace modc::kp {

namespace {

double imbalance(const std::vector<double>& rank_cost) {
    double total = std::accumulate(rank_cost.begin(), rank_cost.end(), 0.0);
    if (total <= 0) return 1;
    return *std::max_element(rank_cost.begin(), rank_cost.end()) / (total / static_cast<double>(rank_cost.size()));
}

}  // namespace

Partition partition(const KernelPlan& plan, int ranks) {
    if (ranks < 1) throw std::invalid_argument("the number of ranks must be at least 1, not " + std::to_string(ranks));
    Partition p;
    p.ranks = ranks;
    p.cost.assign(plan.leaf_count, 0.0);
    for (const auto& g : plan.groups)
        for (const auto& m : g.members) p.cost[static_cast<std::size_t>(m.leaf)] = member_cost(g);
    std::vector<std::size_t> order(plan.leaf_count);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p.cost[a] > p.cost[b]; });
    p.owner.assign(plan.leaf_count, 0);
    p.rank_cost.assign(static_cast<std::size_t>(ranks), 0.0);
    for (std::size_t leaf : order) {
        auto least = std::min_element(p.rank_cost.begin(), p.rank_cost.end());
        *least += p.cost[leaf];
        p.owner[leaf] = static_cast<int>(least - p.rank_cost.begin());
    }
    p.imbalance = imbalance(p.rank_cost);
    double total = std::accumulate(p.cost.begin(), p.cost.end(), 0.0), mean = total / ranks;
    if (total > 0) p.best_imbalance = std::max(*std::max_element(p.cost.begin(), p.cost.end()), mean) / mean;
    std::vector<double> round_robin(static_cast<std::size_t>(ranks), 0.0);
    for (std::size_t leaf = 0; leaf < plan.leaf_count; ++leaf) round_robin[leaf % static_cast<std::size_t>(ranks)] += p.cost[leaf];
    p.round_robin_imbalance = imbalance(round_robin);
    return p;
}

}  // namespace modc::kp
