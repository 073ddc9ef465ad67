// Registry records as JSON values.
#include "cli/records_json.h"

namespace brickrt::cli {

JsonValue BrickJson(const BrickRecord& b, bool with_detail) {
  JsonValue o = JsonValue::MakeObject();
  o.Set("name", JsonValue::String(b.name));
  o.Set("version", JsonValue::Int(b.version));
  o.Set("kind", JsonValue::String(BrickKindName(b.kind)));
  o.Set("layer", b.layer >= 0 ? JsonValue::Int(b.layer) : JsonValue());
  o.Set("index", b.index >= 0 ? JsonValue::Int(b.index) : JsonValue());
  o.Set("digest", JsonValue::String(b.digest));
  o.Set("bytes", JsonValue::Int(b.bytes));
  o.Set("visibility", JsonValue::String(VisibilityName(b.visibility)));
  o.Set("created_at", JsonValue::String(b.created_at));
  if (!with_detail) return o;
  o.Set("parent_id", b.parent_id ? JsonValue::Int(*b.parent_id) : JsonValue());
  auto meta = ParseJson(b.metadata_json);
  o.Set("metadata", meta.ok() ? *meta : JsonValue::String(b.metadata_json));
  JsonValue tensors = JsonValue::MakeArray();
  for (const TensorRecord& t : b.tensors) {
    JsonValue tj = JsonValue::MakeObject();
    tj.Set("name", JsonValue::String(t.name));
    tj.Set("dtype", JsonValue::String(DTypeName(t.dtype)));
    JsonValue shape = JsonValue::MakeArray();
    for (int64_t d : t.shape) shape.Append(JsonValue::Int(d));
    tj.Set("shape", std::move(shape));
    tj.Set("bytes", JsonValue::Int(t.bytes));
    tensors.Append(std::move(tj));
  }
  o.Set("tensors", std::move(tensors));
  return o;
}

JsonValue ManifestJson(const ManifestRecord& m) {
  JsonValue o = JsonValue::MakeObject();
  o.Set("name", JsonValue::String(m.name));
  o.Set("version", JsonValue::Int(m.version));
  o.Set("ref", JsonValue::String(m.Ref()));
  o.Set("kind", JsonValue::String(ManifestKindName(m.kind)));
  o.Set("base", m.base.empty() ? JsonValue() : JsonValue::String(m.base));
  JsonValue tags = JsonValue::MakeArray();
  for (const std::string& t : m.tags) tags.Append(JsonValue::String(t));
  o.Set("tags", std::move(tags));
  o.Set("n_layer", JsonValue::Int(m.config.n_layer));
  o.Set("bricks", JsonValue::Int(static_cast<int64_t>(m.brick_ids.size())));
  o.Set("created_at", JsonValue::String(m.created_at));
  o.Set("source", JsonValue::String(m.source));
  JsonValue tokenizer = JsonValue::MakeArray();  // the tokenizer's file names; empty: none
  for (const TokenizerFileRecord& f : m.tokenizer) tokenizer.Append(JsonValue::String(f.name));
  o.Set("tokenizer", std::move(tokenizer));
  return o;
}

}  // namespace brickrt::cli
