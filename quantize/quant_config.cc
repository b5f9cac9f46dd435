#include "quantize/quant_config.h"

namespace forge::quant {

nlohmann::json QuantizationBlock(const QuantParams& top, const std::map<std::string, QuantParams>& modules) {
  auto entry = [](const QuantParams& p) {
    return nlohmann::json{{"group_size", p.group_size}, {"bits", p.bits}, {"mode", std::string(QuantModeName(p.mode))}};
  };
  nlohmann::json q = entry(top);
  for (const auto& [module, p] : modules) {
    if (p.mode != top.mode || p.bits != top.bits || p.group_size != top.group_size) q[module] = entry(p);
  }
  return q;
}

}  // namespace forge::quant
