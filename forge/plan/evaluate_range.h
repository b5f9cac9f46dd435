// Evaluating part of an expression: the elements [begin, end) of its row-major flattening, so that the
// writer and the quantizer can stream a tensor of any size in bounded memory and split it across threads.
//
// SplitGranule(e) says which ranges can be evaluated from the matching ranges of the sources alone:
// those whose begin and end are multiples of it (end may also be the element count). Sources, casts, the
// norm shift, reshapes, stacks, concatenations, slices and moveaxis behind the leading axis all split;
// a moveaxis across the leading axis or a custom operation does not (granule 0), and EvaluateRange then
// materializes the whole expression and copies the range out. Thread-safe, as Evaluate.
#pragma once

#include <vector>

#include "forge/plan/evaluate.h"

namespace forge::plan {

uint64_t SplitGranule(const Expr& e);

// A byte range of a source file an evaluation read (to hand its pages back once written).
struct SourceSpan {
  const st::SafetensorsFile* file = nullptr;
  uint64_t offset = 0, bytes = 0;
};

// A 1-D tensor of the range's elements (a view into the source mapping when no byte moves are needed).
// `read`, when given, receives the source spans the evaluation touched.
Result<Tensor> EvaluateRange(const Expr& e, uint64_t begin, uint64_t end, std::vector<SourceSpan>* read = nullptr);

// Every source span an expression reads in full; handing spans back to the kernel.
void CollectSources(const Expr& e, std::vector<SourceSpan>* read);
void ReleaseSpans(const std::vector<SourceSpan>& spans);

// Peak bytes of evaluating `elements` elements of `e` by EvaluateRange: EstimateEvalBytes in proportion,
// plus the piece itself (for the writer's budget and --dry-run's memory estimate).
uint64_t EstimatePieceBytes(const Expr& e, uint64_t elements);

// Splits [0, numel) into ranges of about `target` elements, each a multiple of `granule` (> 0).
std::vector<std::pair<uint64_t, uint64_t>> SplitRanges(uint64_t numel, uint64_t granule, uint64_t target);

}  // namespace forge::plan
