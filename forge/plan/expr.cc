#include "forge/plan/expr.h"

#include <fmt/format.h>

#include "forge/st/header.h"

namespace forge::plan {
namespace {

Result<ExprPtr> Make(Expr e) { return ExprPtr(std::make_shared<const Expr>(std::move(e))); }

Status Bad(const std::string& what, const ExprPtr& about = nullptr) {
  const Expr* src = about ? FirstSource(*about) : nullptr;
  if (src == nullptr) return Status::Invalid("plan: " + what);
  return Status::Invalid(what, src->source.file->path(), src->source.info->name);
}

}  // namespace

const Expr* FirstSource(const Expr& e) {
  if (e.kind == OpKind::kSource) return &e;
  for (const auto& in : e.inputs) {
    if (const Expr* s = FirstSource(*in)) return s;
  }
  return nullptr;
}

uint64_t TensorMeta::numel() const {
  uint64_t n = 0;
  st::ShapeNumel(shape, &n);
  return n;
}
uint64_t TensorMeta::nbytes() const { return numel() * static_cast<uint64_t>(DTypeBits(dtype)) / 8; }

std::string ShapeString(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

std::string Expr::Describe() const {
  switch (kind) {
    case OpKind::kSource: return fmt::format("src({})", source.info->name);
    case OpKind::kCast: return fmt::format("cast({}, {})", DTypeName(meta.dtype), inputs[0]->Describe());
    case OpKind::kMoveAxis: return fmt::format("moveaxis({}->{}, {})", axis, axis_to, inputs[0]->Describe());
    case OpKind::kReshape: return fmt::format("reshape({}, {})", ShapeString(meta.shape), inputs[0]->Describe());
    case OpKind::kStack: {
      if (inputs.size() <= 2) {
        std::vector<std::string> parts;
        for (const auto& i : inputs) parts.push_back(i->Describe());
        return fmt::format("stack({})", fmt::join(parts, ", "));
      }
      return fmt::format("stack({} x {} .. {})", inputs.size(), inputs.front()->Describe(), inputs.back()->Describe());
    }
    case OpKind::kConcat: {
      std::vector<std::string> parts;
      for (const auto& i : inputs) parts.push_back(i->Describe());
      return fmt::format("concat(axis {}, {})", axis, fmt::join(parts, ", "));
    }
    case OpKind::kSlice: return fmt::format("slice(axis {}, {}:{}, {})", axis, start, stop, inputs[0]->Describe());
    case OpKind::kAddConstant:
      return fmt::format("add_f32({:+g}, {}{})", constant, inputs[0]->Describe(),
                         meta.dtype == inputs[0]->meta.dtype ? "" : fmt::format(" -> {}", DTypeName(meta.dtype)));
    case OpKind::kCustom: {
      std::vector<std::string> parts;
      for (const auto& i : inputs) parts.push_back(i->Describe());
      return fmt::format("{}({})", custom->Describe(), fmt::join(parts, ", "));
    }
  }
  return "?";
}

Result<ExprPtr> Source(const TensorRef& ref) {
  if (ref.info == nullptr || ref.file == nullptr) return Bad("source tensor missing");
  Expr e;
  e.kind = OpKind::kSource;
  e.source = ref;
  e.meta = {ref.info->dtype, ref.info->shape};
  return Make(std::move(e));
}

Result<ExprPtr> Cast(ExprPtr in, DType to, bool overflow_allowed) {
  if (!IsFloat(in->meta.dtype) || !IsFloat(to)) {
    return Bad(fmt::format("cannot cast {} to {} (float dtypes only)", DTypeName(in->meta.dtype), DTypeName(to)), in);
  }
  if (in->meta.dtype == to) return in;
  Expr e;
  e.kind = OpKind::kCast;
  e.overflow_allowed = overflow_allowed;
  e.meta = {to, in->meta.shape};
  e.inputs = {std::move(in)};
  return Make(std::move(e));
}

Result<ExprPtr> MoveAxis(ExprPtr in, int from, int to) {
  const int nd = static_cast<int>(in->meta.shape.size());
  if (from < 0 || from >= nd || to < 0 || to >= nd) return Bad(fmt::format("moveaxis {}->{} on {}-d tensor", from, to, nd), in);
  if (from == to) return in;
  Expr e;
  e.kind = OpKind::kMoveAxis;
  e.axis = from;
  e.axis_to = to;
  Shape s = in->meta.shape;
  uint64_t d = s[from];
  s.erase(s.begin() + from);
  s.insert(s.begin() + to, d);
  e.meta = {in->meta.dtype, s};
  e.inputs = {std::move(in)};
  return Make(std::move(e));
}

Result<ExprPtr> Reshape(ExprPtr in, Shape shape) {
  TensorMeta m{in->meta.dtype, shape};
  uint64_t n = 0;
  if (!st::ShapeNumel(shape, &n) || n != in->meta.numel()) {
    return Bad(fmt::format("reshape {} to {}: element counts differ", ShapeString(in->meta.shape), ShapeString(shape)), in);
  }
  Expr e;
  e.kind = OpKind::kReshape;
  e.meta = m;
  e.inputs = {std::move(in)};
  return Make(std::move(e));
}

Result<ExprPtr> Stack(std::vector<ExprPtr> parts) {
  if (parts.empty()) return Bad("stack of nothing");
  for (const auto& p : parts) {
    if (p->meta.dtype != parts[0]->meta.dtype || p->meta.shape != parts[0]->meta.shape) {
      return Bad(fmt::format("stack parts differ: {} {} vs {} {}", DTypeName(p->meta.dtype), ShapeString(p->meta.shape),
                             DTypeName(parts[0]->meta.dtype), ShapeString(parts[0]->meta.shape)));
    }
  }
  Expr e;
  e.kind = OpKind::kStack;
  Shape s = parts[0]->meta.shape;
  s.insert(s.begin(), parts.size());
  e.meta = {parts[0]->meta.dtype, s};
  e.inputs = std::move(parts);
  return Make(std::move(e));
}

Result<ExprPtr> Concat(std::vector<ExprPtr> parts, int axis) {
  if (parts.empty()) return Bad("concat of nothing");
  const Shape& first = parts[0]->meta.shape;
  if (axis < 0 || axis >= static_cast<int>(first.size())) return Bad(fmt::format("concat axis {} of {}", axis, ShapeString(first)));
  Shape out = first;
  out[axis] = 0;
  for (const auto& p : parts) {
    Shape s = p->meta.shape;
    if (p->meta.dtype != parts[0]->meta.dtype || s.size() != first.size()) return Bad("concat parts differ in dtype or rank");
    out[axis] += s[axis];
    s[axis] = first[axis];
    if (s != first) return Bad(fmt::format("concat parts differ: {} vs {}", ShapeString(p->meta.shape), ShapeString(first)));
  }
  Expr e;
  e.kind = OpKind::kConcat;
  e.axis = axis;
  e.meta = {parts[0]->meta.dtype, out};
  e.inputs = std::move(parts);
  return Make(std::move(e));
}

Result<ExprPtr> Slice(ExprPtr in, int axis, uint64_t start, uint64_t stop) {
  const int nd = static_cast<int>(in->meta.shape.size());
  if (axis < 0 || axis >= nd || start > stop || stop > in->meta.shape[axis]) {
    return Bad(fmt::format("slice axis {} [{}:{}] of {}", axis, start, stop, ShapeString(in->meta.shape)), in);
  }
  Expr e;
  e.kind = OpKind::kSlice;
  e.axis = axis;
  e.start = start;
  e.stop = stop;
  Shape s = in->meta.shape;
  s[axis] = stop - start;
  e.meta = {in->meta.dtype, s};
  e.inputs = {std::move(in)};
  return Make(std::move(e));
}

Result<ExprPtr> AddConstant(ExprPtr in, double c, DType out, bool overflow_allowed) {
  if (!IsFloat(in->meta.dtype) || !IsFloat(out)) {
    return Bad(fmt::format("is {}, not a float: the norm shift (+{:g}) needs a float16/bfloat16/float32 tensor",
                           DTypeName(in->meta.dtype), c), in);
  }
  Expr e;
  e.kind = OpKind::kAddConstant;
  e.constant = c;
  e.overflow_allowed = overflow_allowed;
  e.meta = {out, in->meta.shape};
  e.inputs = {std::move(in)};
  return Make(std::move(e));
}

Result<ExprPtr> Custom(std::vector<ExprPtr> inputs, std::shared_ptr<const CustomOp> op, TensorMeta out) {
  Expr e;
  e.kind = OpKind::kCustom;
  e.custom = std::move(op);
  e.meta = std::move(out);
  e.inputs = std::move(inputs);
  return Make(std::move(e));
}

uint64_t Plan::total_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors) n += t.expr->meta.nbytes();
  return n;
}

Result<Plan> IdentityPlan(const Checkpoint& ckpt) {
  Plan p;
  for (const auto& [name, ref] : ckpt.tensors()) {
    FORGE_ASSIGN_OR_RETURN(ExprPtr e, Source(ref));
    p.tensors.push_back({name, std::move(e)});
  }
  return p;
}

}  // namespace forge::plan
