// Tokenizer files: which ones make a tokenizer, reading them from a directory, checking them by
// building the Tokenizer, writing them back.
#include "registry/tokenizer_files.h"

#include <algorithm>
#include <filesystem>

#include "core/file.h"
#include "core/json.h"
#include "registry/safetensors.h"

namespace brickrt {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxFileBytes = 256u << 20;  // as Tokenizer::Load
// HF's side files: kept so an exported checkpoint loads with AutoTokenizer as the original did.
constexpr const char* kSideFiles[] = {"tokenizer_config.json", "special_tokens_map.json"};

const TokenizerFile* Find(const TokenizerFiles& files, std::string_view name) {
  for (const TokenizerFile& f : files)
    if (f.name == name) return &f;
  return nullptr;
}

Status ReadInto(const fs::path& dir, const std::string& name, TokenizerFiles* out) {
  BRICK_ASSIGN_OR_RETURN(std::string bytes, ReadFileCapped((dir / name).string(), kMaxFileBytes));
  out->push_back({name, std::move(bytes)});
  return Status::Ok();
}

}  // namespace

const std::vector<std::string>& TokenizerFileNames() {
  static const std::vector<std::string> names = {"tokenizer.json",        "vocab.json",
                                                 "merges.txt",            "added_tokens.json",
                                                 "tokenizer_config.json", "special_tokens_map.json"};
  return names;
}

Result<std::optional<TokenizerFiles>> ReadTokenizerFiles(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return NotFound("tokenizer: " + path + " does not exist");
  TokenizerFiles files;
  if (!fs::is_directory(path, ec)) {
    BRICK_ASSIGN_OR_RETURN(std::string bytes, ReadFileCapped(path, kMaxFileBytes));
    files.push_back({"tokenizer.json", std::move(bytes)});
    return std::optional<TokenizerFiles>(std::move(files));
  }
  const fs::path dir(path);
  const auto has = [&](const char* name) { return fs::is_regular_file(dir / name, ec); };
  if (has("tokenizer.json")) {
    BRICK_RETURN_IF_ERROR(ReadInto(dir, "tokenizer.json", &files));
  } else if (has("vocab.json") != has("merges.txt")) {
    return InvalidArgument((dir / (has("vocab.json") ? "vocab.json" : "merges.txt")).string() + " is there but " +
                           (has("vocab.json") ? "merges.txt" : "vocab.json") +
                           " is missing: a tokenizer needs both (or a tokenizer.json)");
  } else if (has("vocab.json")) {
    BRICK_RETURN_IF_ERROR(ReadInto(dir, "vocab.json", &files));
    BRICK_RETURN_IF_ERROR(ReadInto(dir, "merges.txt", &files));
    if (has("added_tokens.json")) BRICK_RETURN_IF_ERROR(ReadInto(dir, "added_tokens.json", &files));
  } else {
    return std::optional<TokenizerFiles>();
  }
  for (const char* side : kSideFiles)
    if (has(side)) BRICK_RETURN_IF_ERROR(ReadInto(dir, side, &files));
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return std::optional<TokenizerFiles>(std::move(files));
}

Result<Tokenizer> BuildTokenizer(const TokenizerFiles& files, const std::string& where) {
  const auto named = [&](std::string_view name) { return (fs::path(where) / name).string(); };
  if (files.empty()) return InvalidArgument(where + ": no tokenizer files");
  for (const TokenizerFile& f : files) {
    const auto& names = TokenizerFileNames();
    if (std::find(names.begin(), names.end(), f.name) == names.end())
      return InvalidArgument(named(f.name) + ": not a tokenizer file brick knows");
  }
  for (const char* side : kSideFiles) {
    if (const TokenizerFile* f = Find(files, side)) {
      auto v = ParseJson(f->bytes);
      if (!v.ok()) return InvalidArgument(named(side) + ": " + v.status().message());
      if (!v->is_object()) return InvalidArgument(named(side) + ": expected a JSON object");
    }
  }
  if (const TokenizerFile* json = Find(files, "tokenizer.json")) {
    return Tokenizer::FromTokenizerJson(json->bytes, named("tokenizer.json"));
  }
  const TokenizerFile* vocab = Find(files, "vocab.json");
  const TokenizerFile* merges = Find(files, "merges.txt");
  if (vocab == nullptr || merges == nullptr)
    return InvalidArgument(where + ": a tokenizer needs tokenizer.json, or vocab.json + merges.txt");
  const TokenizerFile* added = Find(files, "added_tokens.json");
  return Tokenizer::FromVocabMerges(vocab->bytes, merges->bytes, added != nullptr ? added->bytes : std::string_view(),
                                    where);
}

Status WriteTokenizerFiles(const std::string& dir, const TokenizerFiles& files) {
  for (const TokenizerFile& f : files) {
    BRICK_RETURN_IF_ERROR(WriteFileAtomic((fs::path(dir) / f.name).string(), f.bytes));
  }
  return Status::Ok();
}

}  // namespace brickrt
