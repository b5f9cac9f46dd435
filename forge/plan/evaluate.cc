#include "forge/plan/evaluate.h"

#include <cctype>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "forge/base/float_access.h"

namespace forge::plan {
namespace {

uint64_t ElemBytes(DType d) { return static_cast<uint64_t>(DTypeBits(d)) / 8; }

}  // namespace

// A permutation copy over the output elements in order.
Tensor MoveAxisOf(const Tensor& in, const TensorMeta& out_meta, int from, int to) {
  Tensor out = Tensor::Allocate(out_meta);
  const Shape& s = in.meta.shape;
  const uint64_t esize = ElemBytes(in.meta.dtype);
  // Express as permutation of the input axes; iterate over output elements in order.
  const int nd = static_cast<int>(s.size());
  std::vector<int> perm;  // perm[k] = input axis for output axis k
  for (int i = 0; i < nd; ++i) if (i != from) perm.push_back(i);
  perm.insert(perm.begin() + to, from);
  std::vector<uint64_t> in_stride(nd);
  uint64_t st = 1;
  for (int i = nd - 1; i >= 0; --i) { in_stride[i] = st; st *= s[i]; }
  const Shape& os = out_meta.shape;
  std::vector<uint64_t> idx(nd, 0);
  const uint64_t n = out_meta.numel();
  uint8_t* dst = out.mutable_data();
  for (uint64_t k = 0; k < n; ++k) {
    uint64_t src = 0;
    for (int a = 0; a < nd; ++a) src += idx[a] * in_stride[perm[a]];
    std::memcpy(dst + k * esize, in.data + src * esize, esize);
    for (int a = nd - 1; a >= 0; --a) {  // odometer increment over the output shape
      if (++idx[a] < os[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

Tensor SliceOf(const Tensor& in, const TensorMeta& out_meta, int axis, uint64_t start) {
  Tensor out = Tensor::Allocate(out_meta);
  const Shape& s = in.meta.shape;
  uint64_t outer = 1, inner = ElemBytes(in.meta.dtype);
  for (int i = 0; i < axis; ++i) outer *= s[i];
  for (size_t i = axis + 1; i < s.size(); ++i) inner *= s[i];
  const uint64_t in_block = s[axis] * inner, out_block = out_meta.shape[axis] * inner;
  for (uint64_t o = 0; o < outer; ++o) {
    std::memcpy(out.mutable_data() + o * out_block, in.data + o * in_block + start * inner, out_block);
  }
  return out;
}

// outer x (sum of the parts' blocks along axis) x inner
Tensor ConcatOf(const std::vector<Tensor>& parts, const TensorMeta& out_meta, int axis) {
  Tensor out = Tensor::Allocate(out_meta);
  uint64_t outer = 1, inner = ElemBytes(out_meta.dtype);
  for (int i = 0; i < axis; ++i) outer *= out_meta.shape[i];
  for (size_t i = axis + 1; i < out_meta.shape.size(); ++i) inner *= out_meta.shape[i];
  uint8_t* dst = out.mutable_data();
  for (uint64_t o = 0; o < outer; ++o) {
    for (const auto& part : parts) {
      const uint64_t block = part.meta.shape[axis] * inner;
      std::memcpy(dst, part.data + o * block, block);
      dst += block;
    }
  }
  return out;
}

// Cast rounds f32(x) to the output dtype; the norm shift rounds f32(x) + c once. (A cast adds nothing, not
// even 0, which would turn -0 into +0.)
Result<Tensor> ElementwiseOf(const Expr& e, const Tensor& in, const TensorMeta& out_meta) {
  Tensor out = Tensor::Allocate(out_meta);
  const uint64_t n = out_meta.numel();
  const float c = static_cast<float>(e.constant);
  // Only a narrower float can overflow: f32 into f16/bf16, bf16 into f16.
  const bool check = !e.overflow_allowed && DTypeBits(out_meta.dtype) <= DTypeBits(in.meta.dtype) &&
                     out_meta.dtype != in.meta.dtype;
  for (uint64_t i = 0; i < n; ++i) {
    const float x = LoadAsF32(in.meta.dtype, in.data, i);
    const float y = e.kind == OpKind::kAddConstant ? x + c : x;
    StoreFromF32(out_meta.dtype, out.mutable_data(), i, y);
    if (check && std::isfinite(y) && std::isinf(LoadAsF32(out_meta.dtype, out.data, i))) {
      const Expr* src = FirstSource(e);
      std::string dtype(DTypeName(out_meta.dtype));  // as --dtype spells it: f16, bf16
      for (char& ch : dtype) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return Status::Invalid(fmt::format("value {:g} overflows {} (it would be stored as infinity); keep a wider "
                                         "--dtype, or pass --allow-overflow to store it so",
                                         y, dtype),
                             src ? src->source.file->path() : "", src ? src->source.info->name : "");
    }
  }
  return out;
}

Tensor Tensor::Allocate(TensorMeta meta) {
  Tensor t;
  t.owned = std::make_shared<std::vector<uint8_t>>(meta.nbytes());
  t.data = t.owned->data();
  t.meta = std::move(meta);
  return t;
}

Result<Tensor> CustomOp::Apply(const std::vector<Tensor>& /*inputs*/, const TensorMeta& /*out*/) const {
  return Status::Invalid("plan: custom operation " + Describe() + " has no Apply");
}

Result<Tensor> CustomOp::RunRange(const Expr& /*self*/, uint64_t /*begin*/, uint64_t /*end*/) const {
  return Status::Invalid("plan: custom operation " + Describe() + " has no RunRange");
}

Result<Tensor> CustomOp::Run(const Expr& self) const {
  std::vector<Tensor> in;
  for (const auto& child : self.inputs) {
    FORGE_ASSIGN_OR_RETURN(Tensor t, Evaluate(*child));
    in.push_back(std::move(t));
  }
  return Apply(in, self.meta);
}

Result<Tensor> Evaluate(const Expr& e) {
  if (e.kind == OpKind::kCustom) return e.custom->Run(e);
  if (e.kind == OpKind::kSource) {
    Tensor t;
    t.meta = e.meta;
    t.data = e.source.file->Data(*e.source.info);
    return t;
  }
  std::vector<Tensor> in;
  for (const auto& child : e.inputs) {
    FORGE_ASSIGN_OR_RETURN(Tensor t, Evaluate(*child));
    in.push_back(std::move(t));
  }
  switch (e.kind) {
    case OpKind::kCast:
    case OpKind::kAddConstant: return ElementwiseOf(e, in[0], e.meta);
    case OpKind::kMoveAxis: return MoveAxisOf(in[0], e.meta, e.axis, e.axis_to);
    case OpKind::kSlice: return SliceOf(in[0], e.meta, e.axis, e.start);
    case OpKind::kReshape: {
      Tensor out = in[0];
      out.meta = e.meta;
      return out;
    }
    case OpKind::kStack: {
      Tensor out = Tensor::Allocate(e.meta);
      const uint64_t part = in[0].meta.nbytes();
      for (size_t i = 0; i < in.size(); ++i) std::memcpy(out.mutable_data() + i * part, in[i].data, part);
      return out;
    }
    case OpKind::kConcat: return ConcatOf(in, e.meta, e.axis);
    case OpKind::kCustom: break;  // handled above
    case OpKind::kSource: break;
  }
  return Status::Invalid("plan: unknown operation");
}

void ReleaseSources(const Expr& e) {
  if (e.kind == OpKind::kSource) {
    e.source.file->Release(*e.source.info);
    return;
  }
  for (const auto& in : e.inputs) ReleaseSources(*in);
}

uint64_t EstimateEvalBytes(const Expr& e) {
  if (e.kind == OpKind::kSource) return 0;  // a view
  if (e.kind == OpKind::kCustom && e.custom->StreamsInputs()) return e.meta.nbytes() + e.custom->ScratchBytes(e.meta);
  uint64_t inputs = 0;
  for (const auto& c : e.inputs) inputs += EstimateEvalBytes(*c) + (c->kind == OpKind::kSource ? 0 : c->meta.nbytes());
  uint64_t own = e.kind == OpKind::kReshape ? 0 : e.meta.nbytes();
  if (e.kind == OpKind::kCustom) own += e.custom->ScratchBytes(e.meta);
  return inputs + own;
}

}  // namespace forge::plan
