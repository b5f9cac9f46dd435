#include "forge/plan/evaluate_range.h"

#include <fmt/format.h>

#include <cstring>
#include <numeric>

namespace forge::plan {
namespace {

uint64_t ElemBytes(DType d) { return static_cast<uint64_t>(DTypeBits(d)) / 8; }

// Elements per index of `axis` and everything behind it: the block one outer index spans.
uint64_t BlockFrom(const Shape& s, int axis) {
  uint64_t n = 1;
  for (size_t i = static_cast<size_t>(axis); i < s.size(); ++i) n *= s[i];
  return n;
}

uint64_t Lcm(uint64_t a, uint64_t b) { return a == 0 || b == 0 ? 0 : std::lcm(a, b); }

// The granule of a list of parts laid out one after another at the given element offsets (stack, concat
// along the leading axis): every part must split, and every boundary fall on the common granule.
uint64_t PiecewiseGranule(const std::vector<ExprPtr>& parts) {
  uint64_t g = 1, offset = 0;
  for (const auto& p : parts) g = Lcm(g, SplitGranule(*p));
  if (g == 0) return 0;
  for (const auto& p : parts) {
    if (offset % g != 0) return 0;
    offset += p->meta.numel();
  }
  return g;
}

Tensor Concatenated(std::vector<Tensor> pieces, DType dtype, uint64_t n) {
  if (pieces.size() == 1) return std::move(pieces[0]);
  Tensor out = Tensor::Allocate({dtype, {n}});
  uint64_t at = 0;
  for (const auto& p : pieces) {
    std::memcpy(out.mutable_data() + at, p.data, p.meta.nbytes());
    at += p.meta.nbytes();
  }
  return out;
}

Result<Tensor> Whole(const Expr& e, uint64_t begin, uint64_t end, std::vector<SourceSpan>* read);

}  // namespace

uint64_t SplitGranule(const Expr& e) {
  switch (e.kind) {
    case OpKind::kSource: return 1;
    case OpKind::kCast:
    case OpKind::kAddConstant:
    case OpKind::kReshape: return SplitGranule(*e.inputs[0]);
    case OpKind::kStack: return PiecewiseGranule(e.inputs);
    case OpKind::kConcat: {
      if (e.axis == 0) return PiecewiseGranule(e.inputs);
      for (const auto& p : e.inputs) {  // each part's per-outer block must split on its own granule
        const uint64_t g = SplitGranule(*p);
        if (g == 0 || BlockFrom(p->meta.shape, e.axis) % g != 0) return 0;
      }
      return BlockFrom(e.meta.shape, e.axis);
    }
    case OpKind::kSlice: {
      const Expr& in = *e.inputs[0];
      const uint64_t g = SplitGranule(in);
      if (g == 0) return 0;
      if (e.axis == 0) return (e.start * BlockFrom(in.meta.shape, 1)) % g == 0 ? g : 0;
      return BlockFrom(in.meta.shape, e.axis) % g == 0 ? BlockFrom(e.meta.shape, e.axis) : 0;
    }
    case OpKind::kMoveAxis: {
      if (e.axis == 0 || e.axis_to == 0) return 0;
      const uint64_t g = SplitGranule(*e.inputs[0]), inner = BlockFrom(e.meta.shape, 1);
      return g != 0 && inner % g == 0 ? inner : 0;
    }
    case OpKind::kCustom: return e.custom->RangeGranule(e.meta);
  }
  return 0;
}

Result<Tensor> EvaluateRange(const Expr& e, uint64_t begin, uint64_t end, std::vector<SourceSpan>* read) {
  const DType dt = e.meta.dtype;
  const uint64_t n = end - begin, es = ElemBytes(dt);
  const uint64_t granule = SplitGranule(e);
  if (granule == 0) return Whole(e, begin, end, read);
  const uint64_t numel = e.meta.numel();
  if (begin > end || end > numel) {
    return Status::Invalid(fmt::format("element range [{}, {}) outside a tensor of {} elements", begin, end, numel));
  }
  if (begin % granule != 0 || (end % granule != 0 && end != numel)) {
    // A range the expression cannot split at (a sample of a few rows of a sliced expert stack, say): the
    // whole granules around it, then the range copied out. The per-kind cases below need aligned ranges.
    const uint64_t lo = begin / granule * granule, hi = std::min(numel, (end + granule - 1) / granule * granule);
    FORGE_ASSIGN_OR_RETURN(Tensor wide, EvaluateRange(e, lo, hi, read));
    Tensor t = Tensor::Allocate({dt, {n}});
    if (n) std::memcpy(t.mutable_data(), wide.data + (begin - lo) * es, n * es);
    return t;
  }
  switch (e.kind) {
    case OpKind::kSource: {
      Tensor t;
      t.meta = {dt, {n}};
      t.data = e.source.file->Data(*e.source.info) + begin * es;
      if (read) {
        read->push_back({e.source.file, e.source.file->header().data_start + e.source.info->begin + begin * es, n * es});
      }
      return t;
    }
    case OpKind::kCast:
    case OpKind::kAddConstant: {
      FORGE_ASSIGN_OR_RETURN(Tensor in, EvaluateRange(*e.inputs[0], begin, end, read));
      return ElementwiseOf(e, in, {dt, {n}});
    }
    case OpKind::kReshape: return EvaluateRange(*e.inputs[0], begin, end, read);
    case OpKind::kStack:
    case OpKind::kConcat: {
      if (e.kind == OpKind::kStack || e.axis == 0) {
        std::vector<Tensor> pieces;
        uint64_t offset = 0;
        for (const auto& p : e.inputs) {
          const uint64_t pn = p->meta.numel(), lo = std::max(begin, offset), hi = std::min(end, offset + pn);
          if (lo < hi) {
            FORGE_ASSIGN_OR_RETURN(Tensor t, EvaluateRange(*p, lo - offset, hi - offset, read));
            pieces.push_back(std::move(t));
          }
          offset += pn;
        }
        return Concatenated(std::move(pieces), dt, n);
      }
      // Whole outer indices [o0, o1): ConcatOf on [outer, block] views of each part's blocks for them.
      const uint64_t block = BlockFrom(e.meta.shape, e.axis), o0 = begin / block, o1 = end / block;
      std::vector<Tensor> parts;
      for (const auto& p : e.inputs) {
        const uint64_t pb = BlockFrom(p->meta.shape, e.axis);
        FORGE_ASSIGN_OR_RETURN(Tensor t, EvaluateRange(*p, o0 * pb, o1 * pb, read));
        t.meta.shape = {o1 - o0, pb};
        parts.push_back(std::move(t));
      }
      Tensor out = ConcatOf(parts, {dt, {o1 - o0, block}}, 1);
      out.meta.shape = {n};
      return out;
    }
    case OpKind::kSlice: {
      const Expr& in = *e.inputs[0];
      if (e.axis == 0) {
        const uint64_t shift = e.start * BlockFrom(in.meta.shape, 1);
        return EvaluateRange(in, begin + shift, end + shift, read);
      }
      // Whole outer indices [o0, o1): SliceOf on [outer, axis, inner] views.
      const uint64_t out_block = BlockFrom(e.meta.shape, e.axis), in_block = BlockFrom(in.meta.shape, e.axis);
      const uint64_t inner = BlockFrom(in.meta.shape, e.axis + 1), o0 = begin / out_block, o1 = end / out_block;
      FORGE_ASSIGN_OR_RETURN(Tensor src, EvaluateRange(in, o0 * in_block, o1 * in_block, read));
      src.meta.shape = {o1 - o0, in_block / inner, inner};
      Tensor out = SliceOf(src, {dt, {o1 - o0, out_block / inner, inner}}, 1, e.start);
      out.meta.shape = {n};
      return out;
    }
    case OpKind::kMoveAxis: {
      // Whole leading indices: the same permutation applied to a shorter leading axis.
      const uint64_t inner = BlockFrom(e.meta.shape, 1), l0 = begin / inner, l1 = end / inner;
      FORGE_ASSIGN_OR_RETURN(Tensor src, EvaluateRange(*e.inputs[0], begin, end, read));
      src.meta = e.inputs[0]->meta;
      src.meta.shape[0] = l1 - l0;
      TensorMeta out_meta = e.meta;
      out_meta.shape[0] = l1 - l0;
      Tensor out = MoveAxisOf(src, out_meta, e.axis, e.axis_to);
      out.meta = {dt, {n}};
      return out;
    }
    case OpKind::kCustom: {
      FORGE_ASSIGN_OR_RETURN(Tensor t, e.custom->RunRange(e, begin, end));
      t.meta = {dt, {n}};
      return t;
    }
  }
  return Whole(e, begin, end, read);
}

namespace {

Result<Tensor> Whole(const Expr& e, uint64_t begin, uint64_t end, std::vector<SourceSpan>* read) {
  FORGE_ASSIGN_OR_RETURN(Tensor all, Evaluate(e));
  if (read) CollectSources(e, read);
  if (begin == 0 && end == e.meta.numel()) {  // the whole: no copy
    all.meta = {e.meta.dtype, {end}};
    return all;
  }
  const uint64_t es = ElemBytes(e.meta.dtype);
  Tensor out = Tensor::Allocate({e.meta.dtype, {end - begin}});
  std::memcpy(out.mutable_data(), all.data + begin * es, (end - begin) * es);
  return out;
}

}  // namespace

void CollectSources(const Expr& e, std::vector<SourceSpan>* read) {
  if (e.kind == OpKind::kSource) {
    read->push_back({e.source.file, e.source.file->header().data_start + e.source.info->begin, e.source.info->nbytes()});
    return;
  }
  for (const auto& in : e.inputs) CollectSources(*in, read);
}

void ReleaseSpans(const std::vector<SourceSpan>& spans) {
  for (const auto& s : spans) s.file->ReleaseRange(s.offset, s.bytes);
}

uint64_t EstimatePieceBytes(const Expr& e, uint64_t elements) {
  const double whole = static_cast<double>(EstimateEvalBytes(e)), numel = static_cast<double>(std::max<uint64_t>(1, e.meta.numel()));
  return static_cast<uint64_t>(whole * static_cast<double>(elements) / numel) + elements * ElemBytes(e.meta.dtype);
}

std::vector<std::pair<uint64_t, uint64_t>> SplitRanges(uint64_t numel, uint64_t granule, uint64_t target) {
  const uint64_t step = std::max<uint64_t>(1, target / granule) * granule;
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (uint64_t b = 0; b < numel; b += step) out.emplace_back(b, std::min(numel, b + step));
  if (out.empty()) out.emplace_back(0, 0);
  return out;
}

}  // namespace forge::plan
