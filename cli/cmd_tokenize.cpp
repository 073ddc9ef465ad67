// brick tokenize: text -> token ids and pieces, or ids -> text, with a model's own tokenizer (a
// registry model, a spec's base model, a checkpoint directory) or one given as a file or directory.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_tokenizer.h"
#include "cli/registry_access.h"
#include "core/json.h"
#include "core/tokenizer.h"

namespace brickrt::cli {

int TokenizeCommand(const std::vector<std::string>& args) {
  const char* cmd = "tokenize";
  ArgParser a(cmd, "(MODEL | --tokenizer DIR_OR_FILE) (--text TEXT | --decode IDS) [--json]",
              "Encodes --text into token ids (one line of ids, then one line of pieces as JSON strings), or\n"
              "decodes --decode 1,2,3 into text, with MODEL's tokenizer (a registry model, a submodel spec or a\n"
              "checkpoint directory) or --tokenizer: an HF tokenizer.json, or a directory holding tokenizer.json\n"
              "or vocab.json + merges.txt (+ added_tokens.json). Special tokens written in the text\n"
              "(<|endoftext|>) become their ids unless --no-special. See docs/tokenizer.md.");
  a.Positional("MODEL", "registry model reference, submodel spec file or checkpoint directory");
  AddRegistryOption(a);
  a.Option("tokenizer", "DIR_OR_FILE", "tokenizer.json, or a directory with the tokenizer files");
  a.Option("text", "TEXT", "the text to encode");
  a.Option("decode", "IDS", "comma-separated token ids to decode");
  a.Flag("json", "print {\"ids\": [...], \"pieces\": [...]} (encode) or {\"text\": ...} (decode)");
  a.Flag("no-special", "encode special tokens in the text as plain text");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto model = a.GetPositional(0);
  if (model.has_value() == a.Has("tokenizer"))
    return Fail(cmd, "give a MODEL (whose tokenizer is used) or --tokenizer DIR_OR_FILE, one of them", 2);
  if (a.Has("text") == a.Has("decode")) return Fail(cmd, "give exactly one of --text TEXT and --decode IDS", 2);
  std::optional<Tokenizer> tok;
  if (model) {
    auto mt = LoadModelTokenizer(a, ClassifyModelSource(*model));
    if (!mt.ok()) return Fail(cmd, mt.status().message());
    if (!mt->tokenizer) return Fail(cmd, mt->label + " has no tokenizer; " + NoTokenizerAdvice());
    tok = std::move(mt->tokenizer);
  } else {
    auto loaded = Tokenizer::Load(a.Get("tokenizer"));
    if (!loaded.ok()) return Fail(cmd, loaded.status().message());
    tok = std::move(loaded).value();
  }
  const bool json = a.Has("json");

  if (a.Has("decode")) {
    auto list = ParseIntList(a.Get("decode"), "--decode");
    if (!list.ok()) return Fail(cmd, list.status().message(), 2);
    std::vector<int32_t> ids;
    for (int64_t id : *list) {
      if (id < 0 || id >= tok->vocab_size()) {
        return Fail(cmd, "--decode: token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                             std::to_string(tok->vocab_size()) + ")");
      }
      ids.push_back(static_cast<int32_t>(id));
    }
    auto text = tok->Decode(ids);
    if (!text.ok()) return Fail(cmd, text.status().message());
    StreamDecoder dec(*tok);  // the valid-UTF-8 view of the bytes
    std::string shown;
    for (int32_t id : ids) shown += *dec.Next(id);
    shown += dec.Finish();
    if (json) {
      std::printf("{\"text\": %s}\n", JsonQuote(shown).c_str());
    } else {
      std::fwrite(text->data(), 1, text->size(), stdout);
      std::printf("\n");
    }
    return 0;
  }

  const auto ids = tok->Encode(a.Get("text"), {.match_special = !a.Has("no-special")});
  JsonValue id_list = JsonValue::MakeArray(), pieces = JsonValue::MakeArray();
  for (int32_t id : ids) {
    id_list.Append(JsonValue::Int(id));
    pieces.Append(JsonValue::String(tok->Piece(id)));
  }
  if (json) {
    JsonValue out = JsonValue::MakeObject();
    out.Set("ids", std::move(id_list));
    out.Set("pieces", std::move(pieces));
    std::printf("%s\n", DumpJson(out).c_str());
  } else {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
    std::printf("%s\n%s\n", line.c_str(), DumpJson(pieces).c_str());
  }
  return 0;
}

}  // namespace brickrt::cli
