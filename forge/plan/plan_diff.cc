#include "forge/plan/plan_diff.h"

#include <algorithm>
#include <functional>
#include <set>

#include "forge/plan/evaluate.h"
#include "forge/plan/evaluate_range.h"
#include "forge/plan/writer.h"

namespace forge::plan {
namespace {

void CollectSources(const Expr& e, std::set<std::string>* out) {
  if (e.kind == OpKind::kSource) out->insert(e.source.info->name);
  for (const auto& c : e.inputs) CollectSources(*c, out);
}

constexpr uint64_t kProcessAllowance = 32ull << 20;  // binary, libraries, heap, parsed headers

}  // namespace

PlanDiff DiffPlan(const Checkpoint& source, const Plan& plan) {
  PlanDiff d;
  std::set<std::string> read;
  for (const auto& t : plan.tensors) {
    std::set<std::string> srcs;
    CollectSources(*t.expr, &srcs);
    read.insert(srcs.begin(), srcs.end());
    if (srcs.empty()) d.added.push_back(t.name);
    else if (t.expr->IsPlainCopy() && t.expr->source.info->name == t.name) d.unchanged.push_back(t.name);
    else if (t.expr->IsPlainCopy()) d.renamed.emplace_back(t.expr->source.info->name, t.name);
    else d.changed.emplace_back(t.name, t.expr->Describe());
  }
  for (const auto& [name, ref] : source.tensors()) {
    if (!read.count(name)) d.dropped.push_back(name);
  }
  std::sort(d.renamed.begin(), d.renamed.end());
  std::sort(d.changed.begin(), d.changed.end());
  return d;
}

uint64_t EstimatePeakBytes(const Plan& plan, unsigned threads, uint64_t memory_budget) {
  std::vector<uint64_t> evals;
  uint64_t largest_copy = 0;
  for (const auto& t : plan.tensors) {
    const Expr& e = *t.expr;
    const bool pieces = !e.IsPlainCopy() && e.meta.nbytes() > kCopyChunkBytes && SplitGranule(e) != 0;
    evals.push_back(pieces ? EstimatePieceBytes(e, kCopyChunkBytes / (DTypeBits(e.meta.dtype) / 8)) : EstimateEvalBytes(e));
    if (t.expr->IsPlainCopy()) largest_copy = std::max(largest_copy, t.expr->meta.nbytes());
  }
  std::sort(evals.rbegin(), evals.rend());
  uint64_t in_flight = 0;
  for (unsigned i = 0; i < threads && i < evals.size(); ++i) in_flight += evals[i];
  // The budget caps concurrent evaluations, except that one larger than the budget runs alone.
  if (!evals.empty()) in_flight = std::min(in_flight, std::max(memory_budget, evals.front()));
  // Plain copies touch at most one chunk of source pages per thread before releasing them.
  const uint64_t copies = static_cast<uint64_t>(threads) * std::min(kCopyChunkBytes, largest_copy);
  return kProcessAllowance + in_flight + copies;
}

}  // namespace forge::plan
