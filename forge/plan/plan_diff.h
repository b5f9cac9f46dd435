// What a plan does to its sources, for --dry-run: tensors kept, renamed, changed (with the transform
// chain), added (no source) and dropped (sources no output reads), plus an estimate of peak memory.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "forge/ckpt/checkpoint.h"
#include "forge/plan/expr.h"

namespace forge::plan {

struct PlanDiff {
  std::vector<std::string> unchanged;
  std::vector<std::pair<std::string, std::string>> renamed;  // from, to
  std::vector<std::pair<std::string, std::string>> changed;  // output name, Describe()
  std::vector<std::string> added;
  std::vector<std::string> dropped;
};

PlanDiff DiffPlan(const Checkpoint& source, const Plan& plan);

// Upper estimate of the writer's resident memory: materialized tensors in flight (the largest evaluations,
// one per thread, within the budget), copy chunks, and a fixed allowance for the process itself.
uint64_t EstimatePeakBytes(const Plan& plan, unsigned threads, uint64_t memory_budget);

}  // namespace forge::plan
