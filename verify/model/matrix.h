// A 2-D weight [rows, cols] as the reference decoder sees it: rows read one at a time as f32, straight from
// the checkpoint's mapping. Float tensors (F16/BF16/F32) are converted per row; MLX-quantized ones
// (.weight packed + .scales [+ .biases]) are dequantized per row with MLX's arithmetic. Nothing is
// materialized whole, so a decoder over an 800 GB checkpoint holds only its caches and one row per thread.
//
// Stacked 3-D tensors (experts [E, R, C]) are matrices of E*R rows; Slice() views one expert or one half of
// a fused gate_up projection. Thread-safe (read-only).
#pragma once

#include <cstdint>
#include <string>

#include "forge/base/dtype.h"
#include "quantize/codec.h"

namespace forge::verify::model {

class Matrix {
 public:
  struct Quantized {
    quant::QuantParams params;
    DType scales_dtype = DType::kBF16;
    const uint8_t* scales = nullptr;
    const uint8_t* biases = nullptr;  // affine only
  };

  Matrix() = default;
  static Matrix Float(std::string name, DType dtype, const uint8_t* data, int64_t rows, int64_t cols);
  static Matrix Packed(std::string name, const uint8_t* packed, const Quantized& q, int64_t rows,
                       int64_t cols);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  bool quantized() const { return quantized_; }
  bool empty() const { return data_ == nullptr; }
  const std::string& name() const { return name_; }

  // Storage, for the kernels in matmul.cc.
  DType dtype() const { return dtype_; }
  int64_t first_row() const { return first_row_; }
  const uint8_t* float_data() const { return quantized_ ? nullptr : data_; }
  const uint8_t* packed_data() const { return quantized_ ? data_ : nullptr; }
  const Quantized& quant() const { return q_; }

  // Bytes a full pass over this view reads (packed codes + scales + biases when quantized).
  uint64_t bytes() const;

  // Row r (0-based within this view) as f32 into out[cols].
  void Row(int64_t r, float* out) const;
  // Rows [begin, begin + count) of this view.
  Matrix Slice(int64_t begin, int64_t count) const;

 private:
  std::string name_;
  int64_t rows_ = 0, cols_ = 0, first_row_ = 0;
  DType dtype_ = DType::kF32;
  const uint8_t* data_ = nullptr;
  bool quantized_ = false;
  Quantized q_;
};

}  // namespace forge::verify::model
