// Tokenizer files: HF tokenizer.json (merges as "a b" and as [a, b], added and special tokens,
// MoLM's 38 whitespace tokens), vocab.json + merges.txt + added_tokens.json, malformed files (one
// error line naming the file and the entry, never a crash), the pre-tokenizer's whitespace
// classes, and streaming decode of split UTF-8.
#include <gtest/gtest.h>

#include "core/file.h"
#include "core/json.h"
#include "core/tokenizer.h"
#include "core/tokenizer_pretokenize.h"

namespace brickrt {
namespace {

const std::string kDir = std::string(BRICK_SOURCE_DIR) + "/tests/reference/tokenizer";

std::string ReadOrDie(const std::string& path) {
  auto s = ReadFileCapped(path, 8u << 20);
  BRICK_ASSERT(s.ok(), "test data missing");
  return *s;
}

const Tokenizer& Gpt2() {
  static const Tokenizer tok = *Tokenizer::Load(kDir);
  return tok;
}

// MoLM's added tokens (spec: runs of spaces for 50257-50286, runs of 2..9 tabs for 50294..50287);
// the spaces are taken as 31 down to 2 spaces, as in the CodeGen tokenizer MoLM shares.
JsonValue MolmAddedTokens() {
  JsonValue added = JsonValue::MakeArray();
  auto add = [&](int id, const std::string& content, bool special) {
    JsonValue t = JsonValue::MakeObject();
    t.Set("id", JsonValue::Int(id));
    t.Set("content", JsonValue::String(content));
    t.Set("single_word", JsonValue::Bool(false));
    t.Set("lstrip", JsonValue::Bool(false));
    t.Set("rstrip", JsonValue::Bool(false));
    t.Set("normalized", JsonValue::Bool(true));
    t.Set("special", JsonValue::Bool(special));
    added.Append(std::move(t));
  };
  add(50256, "<|endoftext|>", true);
  for (int n = 31; n >= 2; --n) add(50257 + (31 - n), std::string(n, ' '), false);
  for (int n = 9; n >= 2; --n) add(50287 + (9 - n), std::string(n, '\t'), false);
  return added;
}

// A tokenizer.json around GPT-2's vocab and merges; pair_merges writes merges as [a, b].
std::string Gpt2TokenizerJson(bool pair_merges, bool molm_added) {
  JsonValue root = JsonValue::MakeObject();
  root.Set("version", JsonValue::String("1.0"));
  root.Set("added_tokens", molm_added ? MolmAddedTokens() : JsonValue::MakeArray());
  root.Set("normalizer", JsonValue());
  JsonValue pre = JsonValue::MakeObject();
  pre.Set("type", JsonValue::String("ByteLevel"));
  pre.Set("add_prefix_space", JsonValue::Bool(false));
  pre.Set("trim_offsets", JsonValue::Bool(true));
  pre.Set("use_regex", JsonValue::Bool(true));
  root.Set("pre_tokenizer", pre);
  JsonValue model = JsonValue::MakeObject();
  model.Set("type", JsonValue::String("BPE"));
  model.Set("dropout", JsonValue());
  model.Set("unk_token", JsonValue());
  model.Set("vocab", *ParseJson(ReadOrDie(kDir + "/vocab.json")));
  JsonValue merges = JsonValue::MakeArray();
  const std::string text = ReadOrDie(kDir + "/merges.txt");
  size_t pos = text.find('\n') + 1;  // after #version
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    if (pair_merges) {
      const size_t sp = line.find(' ');
      merges.Append(JsonValue::MakeArray({JsonValue::String(line.substr(0, sp)), JsonValue::String(line.substr(sp + 1))}));
    } else {
      merges.Append(JsonValue::String(line));
    }
  }
  model.Set("merges", merges);
  root.Set("model", model);
  return DumpJson(root);
}

std::vector<int32_t> Concat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(TokenizerJson, BothMergeFormsEncodeLikeVocabMerges) {
  for (bool pairs : {false, true}) {
    auto tok = Tokenizer::FromTokenizerJson(Gpt2TokenizerJson(pairs, false));
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    for (const char* s : {"Hello, world! It's 2024.", "def f(x):\n    return x", "naïve 東京 😀", "   x"}) {
      EXPECT_EQ(tok->Encode(s), Gpt2().Encode(s)) << s;
    }
  }
}

TEST(TokenizerJson, MolmWhitespaceTokensAreMatchedBeforeBpeLongestFirst) {
  auto tok = Tokenizer::FromTokenizerJson(Gpt2TokenizerJson(false, true));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->vocab_size(), 50295);
  const int32_t four_spaces = 50257 + 31 - 4, two_tabs = 50294, eot = 50256;
  EXPECT_EQ(tok->TokenToId("    "), four_spaces);
  EXPECT_EQ(tok->Encode("def f(x):\n    return x"),
            Concat({Gpt2().Encode("def f(x):\n"), {four_spaces}, Gpt2().Encode("return x")}));
  EXPECT_EQ(tok->Encode("a\t\tb"), Concat({Gpt2().Encode("a"), {two_tabs}, Gpt2().Encode("b")}));
  // 40 spaces: the longest (31) first, then 9; a single space is not an added token.
  EXPECT_EQ(tok->Encode(std::string(40, ' ') + "x"), Concat({{50257, 50257 + 31 - 9}, Gpt2().Encode("x")}));
  EXPECT_EQ(tok->Encode("a b"), Gpt2().Encode("a b"));
  // Special tokens in text: matched by default, plain text when match_special is off.
  EXPECT_EQ(tok->Encode("hi<|endoftext|>"), Concat({Gpt2().Encode("hi"), {eot}}));
  EXPECT_EQ(tok->Encode("hi<|endoftext|>", {.match_special = false}),
            Gpt2().Encode("hi<|endoftext|>", {.match_special = false}));
  EXPECT_EQ(tok->Encode("hi<|endoftext|>", {.match_special = false}).size(), 8u);
  // Decode of added tokens, pieces for people and JSON.
  auto text = tok->Decode(std::vector<int32_t>{four_spaces, eot, two_tabs});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "    <|endoftext|>\t\t");
  EXPECT_EQ(tok->Piece(four_spaces), "    ");
  EXPECT_EQ(tok->TokenString(Gpt2().Encode(" the")[0]), "Ġthe");
  EXPECT_EQ(tok->Piece(Gpt2().Encode(" the")[0]), " the");
  EXPECT_FALSE(tok->Decode(std::vector<int32_t>{50295}).ok());
  EXPECT_FALSE(tok->Decode(std::vector<int32_t>{-1}).ok());
}

TEST(VocabMerges, AddedTokensJsonAndEndOfTextSpecial) {
  const std::string vocab = ReadOrDie(kDir + "/vocab.json"), merges = ReadOrDie(kDir + "/merges.txt");
  auto tok = Tokenizer::FromVocabMerges(vocab, merges, R"({"  ": 50257, "\t\t": 50258})");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->vocab_size(), 50259);
  EXPECT_EQ(tok->Encode("a  b\t\t<|endoftext|>"), Concat({Gpt2().Encode("a"), {50257}, Gpt2().Encode("b"), {50258, 50256}}));
  auto gap = Tokenizer::FromVocabMerges(vocab, merges, R"({"  ": 50258})", "/models/x");
  ASSERT_FALSE(gap.ok());
  EXPECT_NE(gap.status().message().find("no token has id 50257"), std::string::npos) << gap.status().message();
}

// A tiny byte-level tokenizer.json: ids 0..255 are the bytes, then "Ġt", "he", "Ġthe".
std::string Tiny(const std::string& extra_vocab = "", const std::string& merges = R"("Ġ t", "h e", "Ġt he")",
                 const std::string& added = "[]", const std::string& model_extra = "",
                 const std::string& pre = R"({"type": "ByteLevel", "add_prefix_space": false})") {
  std::string vocab;
  for (int b = 0; b < 256; ++b) {
    vocab += JsonQuote(BytesToByteLevel(std::string(1, static_cast<char>(b)))) + ": " + std::to_string(b) + ", ";
  }
  vocab += R"("Ġt": 256, "he": 257, "Ġthe": 258)" + extra_vocab;
  return R"({"added_tokens": )" + added + R"(, "normalizer": null, "pre_tokenizer": )" + pre +
         R"(, "model": {"type": "BPE")" + model_extra + R"(, "vocab": {)" + vocab + R"(}, "merges": [)" + merges + "]}}";
}

TEST(TokenizerJson, TinyFileWorks) {
  auto tok = Tokenizer::FromTokenizerJson(Tiny());
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->Encode(" the the"), (std::vector<int32_t>{258, 258}));
  EXPECT_EQ(tok->Encode("the"), (std::vector<int32_t>{'t', 257}));
  auto prefixed = Tokenizer::FromTokenizerJson(Tiny("", R"("Ġ t", "h e", "Ġt he")", "[]", "",
                                                    R"({"type": "ByteLevel", "add_prefix_space": true})"));
  ASSERT_TRUE(prefixed.ok()) << prefixed.status().ToString();
  EXPECT_EQ(prefixed->Encode("the"), (std::vector<int32_t>{258}));
}

TEST(TokenizerJson, MalformedFilesAreOneLineErrorsNamingTheEntry) {
  struct Case {
    std::string json, want;
  };
  const std::vector<Case> cases = {
      {"", "tokenizer.json: line 1:1"},
      {"[1, 2]", "expected a JSON object"},
      {R"({"model": 3})", "missing \"model\""},
      {R"({"model": {"type": "WordPiece", "vocab": {}}})", "only \"BPE\""},
      {Tiny(R"(, "qq": "7")"), "the id of token 'qq' is not an integer"},
      {Tiny(R"(, "qq": 258)"), "id 258 is given to both"},
      {Tiny(R"(, "qq": 400)"), "has id 400, outside [0, 260)"},
      {Tiny(R"(, "qq": -1)"), "has id -1"},
      {Tiny(R"(, "qq": 259.5)"), "not an integer"},
      {Tiny(R"(, "x\u0200": 259)"), "not in GPT-2's byte-level form"},
      {Tiny("", R"("Ġ t", "h e", "Ġt he", "qq z")"), "entry 3: 'qq' is not in the vocab"},
      {Tiny("", R"("Ġ t", "h e", "Ġt he", "Ġthe x")"), "entry 3: the merge of 'Ġthe' and 'x' is not in the vocab"},  // 'Ġthe x' merge result unknown
      {Tiny("", R"("Ġ t", "h e", "Ġ t")"), "entry 2: duplicate merge"},
      {Tiny("", R"("Ġ t", "h e", "Ġthe")"), "entry 2: expected \"a b\""},
      {Tiny("", R"("Ġ t", ["h"], "Ġt he")"), "entry 1: expected"},
      {Tiny("", R"("Ġ t", "h  e")"), "entry 1: expected"},
      {Tiny("", R"("Ġ t", "h e", "Ġt he")", R"([{"id": 259, "content": ""}])"), "is empty"},
      {Tiny("", R"("Ġ t", "h e", "Ġt he")", R"([{"id": 258, "content": "<s>"}])"), "already"},
      {Tiny("", R"("Ġ t", "h e", "Ġt he")", R"([{"id": 261, "content": "<s>"}])"), "has id 261, outside [0, 260)"},
      {Tiny("", R"("Ġ t", "h e", "Ġt he")", R"([{"content": "<s>"}])"), "added_tokens[0]: expected"},
      {Tiny("", R"("Ġ t", "h e", "Ġt he")", R"([{"id": 259, "content": "<s>", "special": 1}])"), "must be true"},
      {Tiny("", R"("Ġ t", "h e", "Ġt he")", R"([{"id": 259, "content": "<s>", "lstrip": true}])"), "not implemented"},
      {Tiny("", R"("Ġ t", "h e", "Ġt he")", R"([{"id": 259, "content": "a"}, {"id": 260, "content": "a"}])"),
       "listed twice"},
      {Tiny("", R"("Ġ t", "h e", "Ġt he")", "[]", R"(, "continuing_subword_prefix": "##")"), "not implemented"},
      {Tiny("", R"("Ġ t", "h e", "Ġt he")", "[]", "", R"({"type": "Whitespace"})"), "must be ByteLevel"},
      {Tiny("", R"("Ġ t", "h e", "Ġt he")", "[]", "", "null"), "must be ByteLevel"},
  };
  for (const Case& c : cases) {
    auto tok = Tokenizer::FromTokenizerJson(c.json);
    ASSERT_FALSE(tok.ok()) << c.want;
    const std::string& m = tok.status().message();
    EXPECT_NE(m.find(c.want), std::string::npos) << "want '" << c.want << "' in: " << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.rfind("tokenizer.json", 0), 0u) << m;
  }
  // A vocab missing a byte.
  std::string no_byte = Tiny();
  const std::string a = "\"a\": 97, ";
  no_byte.replace(no_byte.find(a), a.size(), "\"xy\": 97, ");
  auto tok = Tokenizer::FromTokenizerJson(no_byte);
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("no token for byte 0x61"), std::string::npos) << tok.status().message();
}

TEST(VocabMerges, MalformedMergesTxtNamesTheLine) {
  const std::string vocab = ReadOrDie(kDir + "/vocab.json");
  auto bad = Tokenizer::FromVocabMerges(vocab, "#version: 0.2\nĠ t\nĠt\n", "", "/m");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "/m/merges.txt line 3: expected two tokens separated by one space");
  auto unknown = Tokenizer::FromVocabMerges(vocab, "Ġ t\nĠt zzzzzz\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(), "merges.txt line 2: 'zzzzzz' is not in the vocab");
  auto not_json = Tokenizer::FromVocabMerges("{\"a\": 1,}", "");
  ASSERT_FALSE(not_json.ok());
  EXPECT_EQ(not_json.status().message().rfind("vocab.json: line 1:", 0), 0u) << not_json.status().message();
  EXPECT_EQ(Tokenizer::Load("/nonexistent/tok").status().code(), StatusCode::kNotFound);
}

TEST(PreTokenizer, WhitespaceIsUnicodeWhiteSpaceAsInHfTokenizers) {
  // U+0085 (NEL) is White_Space (HF's \s) though not JavaScript's; U+FEFF is JavaScript's \s only.
  auto split = [](std::string_view s) {
    std::vector<std::string_view> out;
    SplitGpt2(s, &out);
    return std::vector<std::string>(out.begin(), out.end());
  };
  EXPECT_EQ(split("a\xC2\x85\xC2\x85" "b"), (std::vector<std::string>{"a", "\xC2\x85", "\xC2\x85", "b"}));
  EXPECT_EQ(split("a\xEF\xBB\xBF" "b"), (std::vector<std::string>{"a", "\xEF\xBB\xBF", "b"}));
  EXPECT_EQ(split("x   y"), (std::vector<std::string>{"x", "  ", " y"}));
  EXPECT_EQ(split("x \n y  "), (std::vector<std::string>{"x", " \n", " y", "  "}));
  EXPECT_EQ(split("it's'S"), (std::vector<std::string>{"it", "'s", "'", "S"}));
  EXPECT_EQ(split(" 12ab ?!"), (std::vector<std::string>{" 12", "ab", " ?!"}));
  // Invalid UTF-8 is kept byte for byte (each bad byte is an "other" character).
  EXPECT_EQ(split("a\xFF\xFE b"), (std::vector<std::string>{"a", "\xFF\xFE", " b"}));
  const std::string bad = "caf\xC3 \xFF";
  auto back = Gpt2().Decode(Gpt2().Encode(bad));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, bad);
}

TEST(StreamDecoder, HoldsBackSplitCharactersAndFlushesInvalidBytes) {
  const Tokenizer& tok = Gpt2();
  // "😀" is 4 bytes; GPT-2 has tokens for single bytes, so feed it one byte-token at a time.
  auto byte_id = [&](unsigned char b) { return *tok.TokenToId(BytesToByteLevel(std::string(1, static_cast<char>(b)))); };
  StreamDecoder dec(tok);
  EXPECT_EQ(*dec.Next(byte_id('a')), "a");
  EXPECT_EQ(*dec.Next(byte_id(0xF0)), "");
  EXPECT_EQ(*dec.Next(byte_id(0x9F)), "");
  EXPECT_EQ(*dec.Next(byte_id(0x98)), "");
  EXPECT_EQ(dec.pending_bytes(), 3u);
  EXPECT_EQ(*dec.Next(byte_id(0x80)), "\xF0\x9F\x98\x80");
  // A byte that can never start a character comes out as U+FFFD at once.
  EXPECT_EQ(*dec.Next(byte_id(0xFF)), "\xEF\xBF\xBD");
  // A lead byte followed by a non-continuation: U+FFFD, then the next character.
  EXPECT_EQ(*dec.Next(byte_id(0xE2)), "");
  EXPECT_EQ(*dec.Next(byte_id('b')), "\xEF\xBF\xBD" "b");
  // An unfinished character at the end.
  EXPECT_EQ(*dec.Next(byte_id(0xE2)), "");
  EXPECT_EQ(*dec.Next(byte_id(0x82)), "");
  EXPECT_EQ(dec.Finish(), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(dec.pending_bytes(), 0u);
  EXPECT_FALSE(dec.Next(50257).ok());
  EXPECT_EQ(dec.Finish(), "");
}

}  // namespace
}  // namespace brickrt
