// Reading tokenizer files into a TokenizerSpec: HF tokenizer.json, or vocab.json + merges.txt
// (+ added_tokens.json), from memory or from a path. Every error names the file and the entry.
#include <filesystem>

#include "core/file.h"
#include "core/json.h"
#include "core/tokenizer.h"
#include "core/tokenizer_impl.h"

namespace brickrt {

namespace {

constexpr size_t kMaxFileBytes = 256u << 20;

Result<JsonValue> Parse(std::string_view text, const std::string& source) {
  auto v = ParseJson(text);
  if (!v.ok()) return InvalidArgument(source + ": " + v.status().message());
  return v;
}

Status ReadVocab(const JsonValue& vocab, const std::string& source, TokenizerSpec* spec) {
  if (!vocab.is_object()) {
    return InvalidArgument(source + ": expected an object {token: id}, found " + JsonValue::TypeName(vocab.type()));
  }
  spec->vocab_source = source;
  spec->vocab.reserve(vocab.as_object().size());
  for (const auto& [token, id] : vocab.as_object()) {
    const auto n = id.as_int64();
    if (!n) return InvalidArgument(source + ": the id of token '" + token + "' is not an integer");
    spec->vocab.emplace_back(token, *n);
  }
  return Status::Ok();
}

// One "a b" merge: exactly two non-empty parts around one space (byte-level tokens hold no space).
bool SplitMerge(std::string_view line, std::pair<std::string, std::string>* merge) {
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0 || sp + 1 >= line.size()) return false;
  if (line.find(' ', sp + 1) != std::string_view::npos) return false;
  *merge = {std::string(line.substr(0, sp)), std::string(line.substr(sp + 1))};
  return true;
}

Status ReadMergesJson(const JsonValue& merges, const std::string& source, TokenizerSpec* spec) {
  if (!merges.is_array()) return InvalidArgument(source + ": expected an array, found " + JsonValue::TypeName(merges.type()));
  spec->merges_source = source + " entry";
  const auto& arr = merges.as_array();
  for (size_t i = 0; i < arr.size(); ++i) {
    std::pair<std::string, std::string> m;
    const JsonValue& e = arr[i];
    bool ok = false;
    if (e.is_string()) {
      ok = SplitMerge(e.as_string(), &m);
    } else if (e.is_array() && e.as_array().size() == 2 && e.as_array()[0].is_string() && e.as_array()[1].is_string()) {
      m = {e.as_array()[0].as_string(), e.as_array()[1].as_string()};
      ok = !m.first.empty() && !m.second.empty();
    }
    if (!ok) {
      return InvalidArgument(source + " entry " + std::to_string(i) +
                             ": expected \"a b\" or [\"a\", \"b\"] (two non-empty tokens)");
    }
    spec->merges.push_back(std::move(m));
    spec->merge_lines.push_back(static_cast<int64_t>(i));
  }
  return Status::Ok();
}

Status ReadMergesText(std::string_view text, const std::string& source, TokenizerSpec* spec) {
  spec->merges_source = source + " line";
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    std::pair<std::string, std::string> m;
    if (!SplitMerge(line, &m)) {
      return InvalidArgument(source + " line " + std::to_string(line_no) +
                             ": expected two tokens separated by one space");
    }
    spec->merges.push_back(std::move(m));
    spec->merge_lines.push_back(line_no);
  }
  return Status::Ok();
}

Status ReadAddedTokens(const JsonValue& added, const std::string& source, TokenizerSpec* spec) {
  if (!added.is_array()) return InvalidArgument(source + ": expected an array, found " + JsonValue::TypeName(added.type()));
  spec->added_source = source;
  const auto& arr = added.as_array();
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string where = source + "[" + std::to_string(i) + "]";
    const JsonValue& e = arr[i];
    const JsonValue* id = e.Find("id");
    const JsonValue* content = e.Find("content");
    if (!e.is_object() || !id || !id->as_int64() || !content || !content->is_string()) {
      return InvalidArgument(where + ": expected {\"id\": integer, \"content\": string, ...}");
    }
    AddedToken t;
    const int64_t n = *id->as_int64();
    if (n < 0 || n > INT32_MAX) return InvalidArgument(where + ": id " + std::to_string(n) + " is out of range");
    t.id = static_cast<int32_t>(n);
    t.content = content->as_string();
    for (const char* flag : {"special", "lstrip", "rstrip", "single_word", "normalized"}) {
      const JsonValue* f = e.Find(flag);
      if (f && !f->is_bool()) return InvalidArgument(where + ": \"" + flag + "\" must be true or false");
    }
    if (const JsonValue* s = e.Find("special")) t.special = s->as_bool();
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      const JsonValue* f = e.Find(flag);
      if (f && f->as_bool()) {
        return Unsupported(where + ": added token '" + t.content + "' sets \"" + flag + "\", which is not implemented");
      }
    }
    spec->added.push_back(std::move(t));
  }
  return Status::Ok();
}

// Accepts a ByteLevel pre-tokenizer, alone or as the only member of a Sequence.
Status ReadPreTokenizer(const JsonValue* pre, const std::string& source, TokenizerSpec* spec) {
  if (pre && pre->is_object()) {
    const JsonValue* type = pre->Find("type");
    if (type && type->is_string() && type->as_string() == "Sequence") {
      const JsonValue* list = pre->Find("pretokenizers");
      if (list && list->is_array() && list->as_array().size() == 1) return ReadPreTokenizer(&list->as_array()[0], source, spec);
    }
    if (type && type->is_string() && type->as_string() == "ByteLevel") {
      const JsonValue* use_regex = pre->Find("use_regex");
      if (use_regex && !(use_regex->is_bool() && use_regex->as_bool())) {
        return Unsupported(source + ": pre_tokenizer ByteLevel with use_regex false is not implemented");
      }
      if (const JsonValue* aps = pre->Find("add_prefix_space")) {
        if (!aps->is_bool()) return InvalidArgument(source + ": pre_tokenizer.add_prefix_space must be true or false");
        spec->add_prefix_space = aps->as_bool();
      }
      return Status::Ok();
    }
  }
  return Unsupported(source + ": pre_tokenizer must be ByteLevel (a GPT-2 style byte-level BPE); found " +
                     (pre ? DumpJson(*pre).substr(0, 80) : std::string("none")));
}

bool IsNullOrEmptyString(const JsonValue* v) { return !v || v->is_null() || (v->is_string() && v->as_string().empty()); }

}  // namespace

Result<Tokenizer> Tokenizer::FromTokenizerJson(std::string_view json, std::string_view source_view) {
  const std::string source(source_view);
  BRICK_ASSIGN_OR_RETURN(JsonValue root, Parse(json, source));
  if (!root.is_object()) return InvalidArgument(source + ": expected a JSON object at the top");
  const JsonValue* model = root.Find("model");
  if (!model || !model->is_object()) return InvalidArgument(source + ": missing \"model\" object");
  const JsonValue* type = model->Find("type");
  if (type && !(type->is_string() && type->as_string() == "BPE")) {
    return Unsupported(source + ": model.type is " + DumpJson(*type) + "; only \"BPE\" is implemented");
  }
  if (const JsonValue* norm = root.Find("normalizer"); norm && !norm->is_null()) {
    return Unsupported(source + ": a normalizer is set (" + DumpJson(*norm).substr(0, 80) + "); byte-level BPE has none");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!IsNullOrEmptyString(model->Find(key))) return Unsupported(source + ": model." + key + " is not implemented");
  }
  if (const JsonValue* fb = model->Find("byte_fallback"); fb && fb->is_bool() && fb->as_bool()) {
    return Unsupported(source + ": model.byte_fallback is not implemented");
  }
  if (const JsonValue* dropout = model->Find("dropout"); dropout && !dropout->is_null() && !(dropout->is_number() && dropout->as_double() == 0)) {
    return Unsupported(source + ": model.dropout is set; BPE dropout is for training only");
  }
  TokenizerSpec spec;
  if (const JsonValue* im = model->Find("ignore_merges"); im && im->is_bool()) spec.ignore_merges = im->as_bool();
  const JsonValue* vocab = model->Find("vocab");
  if (!vocab) return InvalidArgument(source + ": missing model.vocab");
  BRICK_RETURN_IF_ERROR(ReadVocab(*vocab, source + ": model.vocab", &spec));
  const JsonValue* merges = model->Find("merges");
  if (!merges) return InvalidArgument(source + ": missing model.merges");
  BRICK_RETURN_IF_ERROR(ReadMergesJson(*merges, source + ": model.merges", &spec));
  spec.added_source = source + ": added_tokens";
  if (const JsonValue* added = root.Find("added_tokens"); added && !added->is_null()) {
    BRICK_RETURN_IF_ERROR(ReadAddedTokens(*added, source + ": added_tokens", &spec));
  }
  BRICK_RETURN_IF_ERROR(ReadPreTokenizer(root.Find("pre_tokenizer"), source, &spec));
  return Build(std::move(spec));
}

Result<Tokenizer> Tokenizer::FromVocabMerges(std::string_view vocab_json, std::string_view merges_txt,
                                             std::string_view added_tokens_json, std::string_view dir) {
  const std::string prefix = dir.empty() ? std::string() : (std::filesystem::path(dir) / "").string();
  TokenizerSpec spec;
  spec.endoftext_special = true;
  const std::string vocab_source = prefix + "vocab.json";
  BRICK_ASSIGN_OR_RETURN(JsonValue vocab, Parse(vocab_json, vocab_source));
  BRICK_RETURN_IF_ERROR(ReadVocab(vocab, vocab_source, &spec));
  BRICK_RETURN_IF_ERROR(ReadMergesText(merges_txt, prefix + "merges.txt", &spec));
  spec.added_source = prefix + "added_tokens.json";
  if (!added_tokens_json.empty()) {
    // {"content": id, ...}, as transformers writes it; none of these is special.
    BRICK_ASSIGN_OR_RETURN(JsonValue added, Parse(added_tokens_json, spec.added_source));
    if (!added.is_object()) return InvalidArgument(spec.added_source + ": expected an object {token: id}");
    for (const auto& [content, id] : added.as_object()) {
      const auto n = id.as_int64();
      if (!n || *n < 0 || *n > INT32_MAX) {
        return InvalidArgument(spec.added_source + ": the id of '" + content + "' is not a valid integer id");
      }
      spec.added.push_back({static_cast<int32_t>(*n), content, false});
    }
  }
  return Build(std::move(spec));
}

Result<Tokenizer> Tokenizer::Load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) return NotFound("tokenizer: " + path + " does not exist");
  if (!fs::is_directory(path, ec)) {
    BRICK_ASSIGN_OR_RETURN(std::string text, ReadFileCapped(path, kMaxFileBytes));
    return FromTokenizerJson(text, path);
  }
  const fs::path dir(path);
  if (fs::exists(dir / "tokenizer.json", ec)) {
    BRICK_ASSIGN_OR_RETURN(std::string text, ReadFileCapped((dir / "tokenizer.json").string(), kMaxFileBytes));
    return FromTokenizerJson(text, (dir / "tokenizer.json").string());
  }
  if (!fs::exists(dir / "vocab.json", ec) || !fs::exists(dir / "merges.txt", ec)) {
    return NotFound("tokenizer: " + path + " holds neither tokenizer.json nor vocab.json + merges.txt");
  }
  BRICK_ASSIGN_OR_RETURN(std::string vocab, ReadFileCapped((dir / "vocab.json").string(), kMaxFileBytes));
  BRICK_ASSIGN_OR_RETURN(std::string merges, ReadFileCapped((dir / "merges.txt").string(), kMaxFileBytes));
  std::string added;
  if (fs::exists(dir / "added_tokens.json", ec)) {
    BRICK_ASSIGN_OR_RETURN(added, ReadFileCapped((dir / "added_tokens.json").string(), kMaxFileBytes));
  }
  return FromVocabMerges(vocab, merges, added, path);
}

}  // namespace brickrt
