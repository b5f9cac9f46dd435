#include "verify/model/matrix.h"

#include "forge/base/float_access.h"

namespace forge::verify::model {

Matrix Matrix::Float(std::string name, DType dtype, const uint8_t* data, int64_t rows, int64_t cols) {
  Matrix m;
  m.name_ = std::move(name);
  m.dtype_ = dtype;
  m.data_ = data;
  m.rows_ = rows;
  m.cols_ = cols;
  return m;
}

Matrix Matrix::Packed(std::string name, const uint8_t* packed, const Quantized& q, int64_t rows,
                      int64_t cols) {
  Matrix m;
  m.name_ = std::move(name);
  m.data_ = packed;
  m.quantized_ = true;
  m.q_ = q;
  m.rows_ = rows;
  m.cols_ = cols;
  return m;
}

void Matrix::Row(int64_t r, float* out) const {
  const uint64_t g = static_cast<uint64_t>(first_row_ + r);
  const uint64_t k = static_cast<uint64_t>(cols_);
  if (!quantized_) {
    const uint64_t base = g * k;
    for (uint64_t i = 0; i < k; ++i) out[i] = LoadAsF32(dtype_, data_, base + i);
    return;
  }
  const auto& p = q_.params;
  const uint64_t row_bytes = k * static_cast<uint64_t>(p.bits) / 8;
  const uint64_t groups = k / static_cast<uint64_t>(p.group_size);
  const uint64_t scale_bytes = groups * static_cast<uint64_t>(DTypeBits(q_.scales_dtype)) / 8;
  quant::DequantizeRows(p, q_.scales_dtype, data_ + g * row_bytes, q_.scales + g * scale_bytes,
                        q_.biases ? q_.biases + g * scale_bytes : nullptr, 1, k, DType::kF32,
                        reinterpret_cast<uint8_t*>(out));
}

uint64_t Matrix::bytes() const {
  const uint64_t n = static_cast<uint64_t>(rows_) * static_cast<uint64_t>(cols_);
  if (!quantized_) return n * static_cast<uint64_t>(DTypeBits(dtype_)) / 8;
  const uint64_t groups = n / static_cast<uint64_t>(q_.params.group_size);
  const uint64_t per_scale = static_cast<uint64_t>(DTypeBits(q_.scales_dtype)) / 8;
  return n * static_cast<uint64_t>(q_.params.bits) / 8 + groups * per_scale * (q_.biases ? 2 : 1);
}

Matrix Matrix::Slice(int64_t begin, int64_t count) const {
  Matrix m = *this;
  m.first_row_ = first_row_ + begin;
  m.rows_ = count;
  return m;
}

}  // namespace forge::verify::model
