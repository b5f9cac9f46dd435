#include "forge/base/status.h"

namespace forge {

Status Status::Error(ExitCode code, std::string message, std::string file, std::string tensor) {
  Status s;
  s.code_ = code == ExitCode::kOk ? ExitCode::kInvalidInput : code;
  s.message_ = std::move(message);
  s.file_ = std::move(file);
  s.tensor_ = std::move(tensor);
  return s;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out;
  if (!file_.empty()) out += file_ + ": ";
  if (!tensor_.empty()) out += "tensor '" + tensor_ + "': ";
  out += message_;
  return out;
}

Status Status::WithFile(const std::string& file) const {
  Status s = *this;
  if (s.file_.empty()) s.file_ = file;
  return s;
}

}  // namespace forge
