// Tokenizer speed: encode and decode throughput over the reference corpus (GPT-2 vocabulary).
// Usage: brick_bench_tokenizer [TOKENIZER_DIR [CORPUS_JSONL]] (defaults: tests/reference/tokenizer).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/tokenizer.h"

int main(int argc, char** argv) {
  using brickrt::Tokenizer;
  const std::string dir = argc > 1 ? argv[1] : "tests/reference/tokenizer";
  const std::string corpus_path = argc > 2 ? argv[2] : dir + "/corpus.jsonl";
  auto t0 = std::chrono::steady_clock::now();
  auto tok = Tokenizer::Load(dir);
  if (!tok.ok()) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", tok.status().message().c_str());
    return 1;
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<std::string> records;
  size_t bytes = 0;
  std::ifstream in(corpus_path);
  for (std::string line; std::getline(in, line);) {
    auto v = brickrt::ParseJson(line);
    if (v.ok() && v->is_string()) {
      records.push_back(v->as_string());
      bytes += records.back().size();
    }
  }
  if (records.empty()) {
    std::fprintf(stderr, "tokenizer_bench: no records in %s\n", corpus_path.c_str());
    return 1;
  }
  auto run = [&](int passes, size_t* tokens) {
    const auto start = std::chrono::steady_clock::now();
    for (int p = 0; p < passes; ++p) {
      for (const auto& r : records) *tokens += tok->Encode(r).size();
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  size_t tokens = 0;
  const double cold_s = run(1, &tokens);  // the BPE cache starts empty
  tokens = 0;
  const int passes = 10;
  const double warm_s = run(passes, &tokens);
  std::vector<std::vector<int32_t>> encoded;
  for (const auto& r : records) encoded.push_back(tok->Encode(r));
  const auto d0 = std::chrono::steady_clock::now();
  size_t out_bytes = 0;
  for (int p = 0; p < passes; ++p) {
    for (const auto& ids : encoded) out_bytes += tok->Decode(ids)->size();
  }
  const double dec_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - d0).count();
  const double mb = static_cast<double>(bytes) / 1e6;
  std::printf("load %.0f ms; corpus %zu records, %.2f MB, %zu tokens\n", load_s * 1e3, records.size(), mb,
              tokens / passes);
  std::printf("encode: first pass %.1f MB/s, warm %.1f MB/s (%.2f M tokens/s); decode %.0f MB/s\n", mb / cold_s,
              mb * passes / warm_s, static_cast<double>(tokens) / warm_s / 1e6,
              static_cast<double>(out_bytes) / 1e6 / dec_s);
  return 0;
}
