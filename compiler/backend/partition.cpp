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

// Local search after LPT: while a move of one weight off the busiest rank, or a swap of it with
// a cheaper weight of another rank, lowers the busiest rank's work below what it was, make the
// best such change. Each change lowers the maximum or the number of ranks at it, so it ends.
void improve(Partition& p) {
    const std::size_t R = p.rank_cost.size(), W = p.owner.size();
    for (int round = 0; round < 10000; ++round) {
        const std::size_t busiest = static_cast<std::size_t>(
            std::max_element(p.rank_cost.begin(), p.rank_cost.end()) - p.rank_cost.begin());
        const double top = p.rank_cost[busiest];
        double best = top;  // the larger of the two changed ranks' work after the best change
        std::size_t from = W, to_rank = R, with = W;
        for (std::size_t w = 0; w < W; ++w) {
            if (static_cast<std::size_t>(p.owner[w]) != busiest) continue;
            for (std::size_t r = 0; r < R; ++r) {  // move w to r
                if (r == busiest) continue;
                double worse = std::max(top - p.cost[w], p.rank_cost[r] + p.cost[w]);
                if (worse < best) best = worse, from = w, to_rank = r, with = W;
            }
            for (std::size_t v = 0; v < W; ++v) {  // swap w with a cheaper v of another rank
                auto r = static_cast<std::size_t>(p.owner[v]);
                if (r == busiest || p.cost[v] >= p.cost[w]) continue;
                double delta = p.cost[w] - p.cost[v];
                double worse = std::max(top - delta, p.rank_cost[r] + delta);
                if (worse < best) best = worse, from = w, to_rank = r, with = v;
            }
        }
        if (from == W) return;
        double delta = p.cost[from] - (with < W ? p.cost[with] : 0.0);
        p.rank_cost[busiest] -= delta;
        p.rank_cost[to_rank] += delta;
        p.owner[from] = static_cast<int>(to_rank);
        if (with < W) p.owner[with] = static_cast<int>(busiest);
    }
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
    improve(p);
    p.imbalance = imbalance(p.rank_cost);
    double total = std::accumulate(p.cost.begin(), p.cost.end(), 0.0), mean = total / ranks;
    if (total > 0) p.best_imbalance = std::max(*std::max_element(p.cost.begin(), p.cost.end()), mean) / mean;
    std::vector<double> round_robin(static_cast<std::size_t>(ranks), 0.0);
    for (std::size_t leaf = 0; leaf < plan.leaf_count; ++leaf) round_robin[leaf % static_cast<std::size_t>(ranks)] += p.cost[leaf];
    p.round_robin_imbalance = imbalance(round_robin);
    return p;
}

}  // namespace modc::kp
