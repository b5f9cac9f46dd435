#include "forge/st/reader.h"

namespace forge::st {

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  FORGE_ASSIGN_OR_RETURN(auto map, MappedFile::Open(path));
  auto parsed = ParseHeader(map->data(), map->size(), map->size());
  if (!parsed.ok()) return parsed.status().WithFile(path);
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->map_ = std::move(map);
  f->header_ = std::move(parsed).value();
  return f;
}

}  // namespace forge::st
