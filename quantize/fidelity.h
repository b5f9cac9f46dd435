// How close dequantize(quantize(w)) is to w, per tensor: cosine similarity, max and mean absolute error
// (accumulated in double). Collected across writer threads. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace forge::quant {

struct Fidelity {
  double cosine = 1.0, max_abs_error = 0.0, mean_abs_error = 0.0;
  uint64_t elements = 0;
  uint64_t quantized_bytes = 0;  // packed weight + scales + biases
  std::string params;
};

class FidelityCollector {
 public:
  void Add(const std::string& name, const Fidelity& f);
  std::map<std::string, Fidelity> Snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, Fidelity> by_tensor_;
};

// Accumulates a comparison block by block (in double), so large tensors are measured in pieces.
class FidelityAccumulator {
 public:
  void Add(const float* original, const float* reconstructed, uint64_t n);
  // Adds another accumulator's blocks (merging in a fixed order keeps the sums deterministic).
  void Merge(const FidelityAccumulator& other);
  Fidelity Result() const;

 private:
  double dot_ = 0, na_ = 0, nb_ = 0, sum_abs_ = 0, max_abs_ = 0;
  uint64_t n_ = 0;
};

// Compares n float32 values.
Fidelity Compare(const float* original, const float* reconstructed, uint64_t n);

// Tests: run the sums with `lanes` doubles per vector (2, 4 on AVX2, 8 on AVX-512; 0 = the widest this CPU
// runs). Returns false, changing nothing, where the CPU cannot. Every width gives the same bits.
bool SetFidelityLanes(int lanes);

}  // namespace forge::quant
