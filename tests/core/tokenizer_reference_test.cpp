// GPT-2 byte-level BPE against ids from an independent encoder (the npm package gpt-3-encoder) on
// ~7,000 records of real text: every record must give exactly the reference ids and decode back
// byte for byte. Regenerate the data with tests/reference/tokenizer/make_reference.js.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/file.h"
#include "core/json.h"
#include "core/tokenizer.h"

namespace brickrt {
namespace {

const std::string kDir = std::string(BRICK_SOURCE_DIR) + "/tests/reference/tokenizer";

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<int32_t> ParseIds(const std::string& line) {
  std::istringstream in(line);
  std::vector<int32_t> ids;
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

std::string Join(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

TEST(TokenizerReference, EveryCorpusRecordMatchesGpt3EncoderAndRoundTrips) {
  auto tok = Tokenizer::Load(kDir);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->vocab_size(), 50257);
  const auto corpus = ReadLines(kDir + "/corpus.jsonl");
  const auto expected = ReadLines(kDir + "/expected_ids.txt");
  ASSERT_GE(corpus.size(), 5000u);
  ASSERT_EQ(corpus.size(), expected.size());
  size_t failures = 0, tokens = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    auto text = ParseJson(corpus[i]);
    ASSERT_TRUE(text.ok() && text->is_string()) << "corpus.jsonl line " << i + 1;
    const std::string& s = text->as_string();
    const auto ids = tok->Encode(s);
    const auto want = ParseIds(expected[i]);
    tokens += ids.size();
    if (ids != want && ++failures <= 10) {
      ADD_FAILURE() << "corpus.jsonl line " << i + 1 << ": " << JsonQuote(s) << "\n got:  " << Join(ids)
                    << "\n want: " << Join(want);
    }
    auto back = tok->Decode(ids);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s) << "corpus.jsonl line " << i + 1;
  }
  EXPECT_EQ(failures, 0u) << "of " << corpus.size() << " records";
  EXPECT_GT(tokens, 100000u);
}

TEST(TokenizerReference, StreamingDecodeOfTheCorpusEqualsDecode) {
  auto tok = Tokenizer::Load(kDir);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const auto corpus = ReadLines(kDir + "/corpus.jsonl");
  for (size_t i = 0; i < corpus.size(); i += 3) {
    const std::string s = ParseJson(corpus[i])->as_string();
    StreamDecoder dec(*tok);
    std::string streamed;
    for (int32_t id : tok->Encode(s)) {
      auto piece = dec.Next(id);
      ASSERT_TRUE(piece.ok());
      streamed += *piece;
      EXPECT_LE(dec.pending_bytes(), 3u);
    }
    streamed += dec.Finish();
    EXPECT_EQ(streamed, s) << "corpus.jsonl line " << i + 1;
  }
}

}  // namespace
}  // namespace brickrt
