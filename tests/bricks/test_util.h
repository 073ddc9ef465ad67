// Shared helpers for the bricks tests: loading the golden reference cases and building models.
#pragma once

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bricks/model.h"
#include "core/json.h"
#include "registry/hf_checkpoint.h"

namespace brickrt::testing {

inline std::string ReferenceDir(const std::string& name) {
  return std::string(BRICK_SOURCE_DIR) + "/tests/reference/data/" + name;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::vector<int32_t> IdsFromJson(const JsonValue& arr) {
  std::vector<int32_t> ids;
  for (const JsonValue& v : arr.as_array()) ids.push_back(static_cast<int32_t>(*v.as_int64()));
  return ids;
}

inline std::shared_ptr<const Model> LoadModel(const std::string& dir) {
  auto ckpt = LoadHfCheckpoint(dir);
  if (!ckpt.ok()) return nullptr;
  auto model = Model::Build(ckpt->config, std::move(ckpt->bricks));
  if (!model.ok()) return nullptr;
  return *model;
}

}  // namespace brickrt::testing
