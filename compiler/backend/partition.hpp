// compiler/backend/partition: which rank dualizes each weight when N ranks share an optimizer
// step (docs/distributed.md). Each weight costs the modelled work of its map in the kernel plan
// (kp::member_cost: Newton-Schulz flops, Gram or direct, from the plan's own step counts);
// weights go to ranks by longest processing time first: the costliest weight to the rank with
// the least work so far, ties to the lowest rank (within 4/3 of the best possible maximum,
// Graham); then moves and swaps off the busiest rank while they lower its work.
#pragma once
#include <string>
#include <vector>

#include "program/kernel_plan.hpp"

namespace modc::kp {

struct Partition {
    int ranks = 1;
    std::vector<int> owner;            // by weight index (the dual plan's order)
    std::vector<double> cost;          // by weight index: modelled flops of its map
    std::vector<double> rank_cost;     // by rank: the sum of its weights' costs
    double imbalance = 1;              // max / mean of rank_cost (1 when perfectly even)
    double round_robin_imbalance = 1;  // the same for weight i on rank i mod N, for comparison
    double best_imbalance = 1;         // no assignment of whole weights does better: max(costliest weight, mean) / mean
};

// Throws std::invalid_argument for ranks < 1.
Partition partition(const KernelPlan& plan, int ranks);

}  // namespace modc::kp
