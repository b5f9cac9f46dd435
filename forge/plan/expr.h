// A plan: the ordered list of output tensors, each a name plus an expression over source tensors.
//
// Sources point into an open Checkpoint (its mappings and headers): the Checkpoint must outlive every plan
// built from it. Expressions are immutable trees built by the functions below, which check shapes and dtypes when the
// plan is built, so a plan that exists can be written (and --dry-run can report exact sizes). Nothing is
// read or computed until the Writer evaluates an expression (evaluate.h). Passes map a Plan to a Plan.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "forge/base/dtype.h"
#include "forge/base/status.h"
#include "forge/ckpt/checkpoint.h"

namespace forge::plan {

using Shape = std::vector<uint64_t>;

struct TensorMeta {
  DType dtype = DType::kU8;
  Shape shape;
  uint64_t numel() const;
  uint64_t nbytes() const;
};

struct Tensor;  // evaluate.h
class Expr;
using ExprPtr = std::shared_ptr<const Expr>;

// Extension point for transforms defined outside forge/ (e.g. quantize codecs). Ops whose outputs share
// one computation (a quantized weight, its scales and biases) override Run() to evaluate their inputs once
// and hand out the parts; the others implement Apply() on evaluated inputs.
class CustomOp {
 public:
  virtual ~CustomOp() = default;
  virtual std::string Describe() const = 0;
  virtual Result<Tensor> Apply(const std::vector<Tensor>& inputs, const TensorMeta& out) const;
  virtual Result<Tensor> Run(const Expr& self) const;  // default: evaluate inputs, then Apply
  // Rough bytes of scratch memory Apply needs beyond inputs and output (for the writer's budget).
  virtual uint64_t ScratchBytes(const TensorMeta& /*out*/) const { return 0; }
  // True when Run() reads its inputs in bounded ranges (evaluate_range.h) instead of materializing them:
  // the budget then counts only the output and ScratchBytes.
  virtual bool StreamsInputs() const { return false; }
  // Ops that hand out parts of one shared computation return its identity: the writer then schedules those
  // parts one after another (wherever the file layout puts them), so a computation's results live only
  // until all its parts are written.
  virtual const void* SharedComputation() const { return nullptr; }
  // Ops whose output splits into element ranges return the granule (a range starts and ends on multiples
  // of it, or at the end) and compute ranges in RunRange; 0: the output exists only whole. The writer
  // then computes such an output a few hundred KB at a time and writes each range while it is in cache.
  virtual uint64_t RangeGranule(const TensorMeta& /*out*/) const { return 0; }
  virtual Result<Tensor> RunRange(const Expr& self, uint64_t begin, uint64_t end) const;
};

enum class OpKind { kSource, kCast, kMoveAxis, kReshape, kStack, kConcat, kSlice, kAddConstant, kCustom };

class Expr {
 public:
  OpKind kind = OpKind::kSource;
  TensorMeta meta;  // of the result
  std::vector<ExprPtr> inputs;
  TensorRef source;         // kSource
  int axis = 0, axis_to = 0;  // kMoveAxis (from, to), kSlice and kConcat (axis)
  uint64_t start = 0, stop = 0;  // kSlice
  double constant = 0;           // kAddConstant
  // kCast / kAddConstant into a narrower float: a finite value that rounds to +-inf is an error naming the
  // tensor unless allowed (convert/quantize --allow-overflow).
  bool overflow_allowed = false;
  std::shared_ptr<const CustomOp> custom;

  // One-line rendering, e.g. "add_f32(+1, src(model.norm.weight))".
  std::string Describe() const;
  // True for a bare source: the writer copies its bytes unchanged.
  bool IsPlainCopy() const { return kind == OpKind::kSource; }
};

Result<ExprPtr> Source(const TensorRef& ref);
Result<ExprPtr> Cast(ExprPtr in, DType to, bool overflow_allowed = false);  // floats only; nearest even
Result<ExprPtr> MoveAxis(ExprPtr in, int from, int to);
Result<ExprPtr> Reshape(ExprPtr in, Shape shape);
Result<ExprPtr> Stack(std::vector<ExprPtr> parts);  // along a new leading axis; equal metas
Result<ExprPtr> Concat(std::vector<ExprPtr> parts, int axis);  // shapes equal except along `axis`
Result<ExprPtr> Slice(ExprPtr in, int axis, uint64_t start, uint64_t stop);
// y = round_to(out, f32(x) + c): computed in f32 and rounded once (the norm "+1" shift).
Result<ExprPtr> AddConstant(ExprPtr in, double c, DType out, bool overflow_allowed = false);

// The first source tensor an expression reads (depth first), or null: what its errors name.
const Expr* FirstSource(const Expr& e);
Result<ExprPtr> Custom(std::vector<ExprPtr> inputs, std::shared_ptr<const CustomOp> op, TensorMeta out);

struct PlannedTensor {
  std::string name;
  ExprPtr expr;
};

struct Plan {
  std::vector<PlannedTensor> tensors;
  uint64_t total_bytes() const;
};

// The identity plan of a checkpoint: every tensor copied under its own name.
Result<Plan> IdentityPlan(const Checkpoint& ckpt);

std::string ShapeString(const Shape& s);

}  // namespace forge::plan
