// Tests for registry/hf_config: the MoLM-700M-8B config parses to the documented values, every
// unsupported variant and missing key is rejected with a message naming it, and HfConfigJson
// round-trips through the parser.
#include "registry/hf_config.h"

#include <gtest/gtest.h>

#include <string>

#include "core/json.h"

namespace brickrt {
namespace {

// The released ibm/MoLM-700M-8B config.json (spec §1.1), including the unused leftover fields.
constexpr char kMolm8B[] = R"({
  "activation_function": "gelu_new", "architectures": ["ModuleFormerForCausalLM"], "att_func": "stickbreaking",
  "att_hidden": 1024, "attn_pdrop": 0, "aux_loss_type": "mi", "aux_loss_weight": 0, "block_size": 512,
  "bos_token_id": 50256, "embd_pdrop": 0, "eos_token_id": 50256, "ffd_hidden": 2048, "gate_type": "mlp",
  "gating_size": 256, "history_length": 512, "initializer_range": 0.02, "k_att": 2, "k_mlp": 2,
  "layer_norm_epsilon": 1e-05, "local_size": 1, "model_type": "moduleformer", "moe_pdrop": 0, "moe_type": "moe",
  "n_att_experts": 16, "n_ctx": 24576, "n_embd": 1024, "n_head": 1, "n_layer": 48, "n_mlp_experts": 32,
  "pre_norm": true, "resid_pdrop": 0, "sample_topk": 0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.28.1", "universal": false, "use_cache": true, "vocab_size": 50295, "world_size": null
})";

std::string With(const std::string& key, const std::string& json_value) {
  auto v = ParseJson(kMolm8B);
  JsonValue o = v.value();
  if (json_value.empty()) {
    auto& m = o.mutable_object();
    for (auto it = m.begin(); it != m.end(); ++it)
      if (it->first == key) {
        m.erase(it);
        break;
      }
  } else {
    o.Set(key, ParseJson(json_value).value());
  }
  return DumpJson(o);
}

Status Err(const std::string& text) { return ParseHfConfig(text, "dir/config.json").status(); }

TEST(HfConfig, ParsesMolm700M8B) {
  auto c = ParseHfConfig(kMolm8B);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->n_layer, 48);
  EXPECT_EQ(c->n_embd, 1024);
  EXPECT_EQ(c->vocab_size, 50295);
  EXPECT_EQ(c->att_hidden, 1024);
  EXPECT_EQ(c->n_head, 1);
  EXPECT_EQ(c->ffd_hidden, 2048);
  EXPECT_EQ(c->gating_size, 256);
  EXPECT_EQ(c->k_att, 2);
  EXPECT_EQ(c->k_mlp, 2);
  ASSERT_EQ(c->n_att_experts.size(), 48u);
  EXPECT_EQ(c->n_att_experts[47], 16);
  EXPECT_EQ(c->n_mlp_experts[0], 32);
  EXPECT_FLOAT_EQ(c->layer_norm_eps, 1e-5f);
  EXPECT_EQ(c->bos_token_id, 50256);
  EXPECT_EQ(c->eos_token_id, 50256);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->dtype, DType::kBF16);
}

TEST(HfConfig, OptionalKeysDefaultAndTorchDtypeMaps) {
  auto c = ParseHfConfig(With("layer_norm_epsilon", "") /* dropped */);
  ASSERT_TRUE(c.ok());
  EXPECT_FLOAT_EQ(c->layer_norm_eps, 1e-5f);
  EXPECT_EQ(ParseHfConfig(With("torch_dtype", "\"float16\""))->dtype, DType::kF16);
  EXPECT_EQ(ParseHfConfig(With("torch_dtype", "\"float32\""))->dtype, DType::kF32);
  EXPECT_TRUE(ParseHfConfig(With("activation_function", "\"gelu_pytorch_tanh\"")).ok());
  EXPECT_TRUE(ParseHfConfig(With("tie_word_embeddings", "true"))->tie_word_embeddings);
  EXPECT_EQ(ParseHfConfig(With("eos_token_id", "7"))->eos_token_id, 7);
}

TEST(HfConfig, RejectsOtherModelTypes) {
  Status st = Err(With("model_type", "\"gpt2\""));
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("dir/config.json: model_type \"gpt2\" is not supported"), std::string::npos)
      << st.message();
  EXPECT_EQ(Err(With("model_type", "")).code(), StatusCode::kInvalidArgument);
}

TEST(HfConfig, RejectsOtherGateTypesAndActivations) {
  Status st = Err(With("gate_type", "\"gmm\""));
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("gate_type \"gmm\""), std::string::npos);
  st = Err(With("activation_function", "\"relu\""));
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("activation_function \"relu\""), std::string::npos);
  EXPECT_EQ(Err(With("torch_dtype", "\"float64\"")).code(), StatusCode::kUnsupported);
}

TEST(HfConfig, RejectsMultiHeadOrProjectedKeyValues) {
  Status st = Err(With("n_head", "8"));
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("identity key/value projections"), std::string::npos) << st.message();
  st = Err(With("att_hidden", "512"));
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("att_hidden 512"), std::string::npos) << st.message();
}

TEST(HfConfig, RejectsMissingKeysAndBadValues) {
  for (const char* key : {"n_layer", "n_embd", "vocab_size", "att_hidden", "n_head", "ffd_hidden", "gating_size",
                          "k_att", "k_mlp", "n_att_experts", "n_mlp_experts"}) {
    Status st = Err(With(key, ""));
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << key;
    EXPECT_NE(st.message().find(std::string("missing required key \"") + key + "\""), std::string::npos)
        << st.message();
  }
  Status st = Err(With("gating_size", "0"));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("\"gating_size\": expected a positive integer, found 0"), std::string::npos);
  st = Err(With("n_layer", "2.5"));
  EXPECT_NE(st.message().find("\"n_layer\": expected an integer, found 2.5"), std::string::npos) << st.message();
  st = Err(With("k_mlp", "33"));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("k_mlp 33"), std::string::npos);
  EXPECT_EQ(Err(With("tie_word_embeddings", "\"no\"")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Err("[1, 2]").code(), StatusCode::kInvalidArgument);
  st = Err("{\"model_type\": }");
  EXPECT_NE(st.message().find("dir/config.json: invalid JSON: line 1:16"), std::string::npos) << st.message();
  EXPECT_EQ(ReadHfConfig("/nonexistent/config.json").status().code(), StatusCode::kNotFound);
}

TEST(HfConfig, WriterRoundTripsAndUsesMaxExpertCounts) {
  ModelConfig c;
  c.n_layer = 3;
  c.n_embd = c.att_hidden = 64;
  c.vocab_size = 300;
  c.ffd_hidden = 96;
  c.gating_size = 32;
  c.k_att = 2;
  c.k_mlp = 3;
  c.n_att_experts = {4, 3, 5};
  c.n_mlp_experts = {8, 6, 7};
  c.bos_token_id = c.eos_token_id = 299;
  c.dtype = DType::kF16;
  const std::string text = HfConfigJson(c);
  auto j = ParseJson(text);
  ASSERT_TRUE(j.ok()) << text;
  EXPECT_EQ(j->Find("model_type")->as_string(), "moduleformer");
  EXPECT_EQ(j->Find("architectures")->as_array()[0].as_string(), "ModuleFormerForCausalLM");
  EXPECT_EQ(j->Find("gate_type")->as_string(), "mlp");
  EXPECT_EQ(j->Find("activation_function")->as_string(), "gelu_new");
  EXPECT_EQ(j->Find("block_size")->as_int64(), 512);
  EXPECT_EQ(j->Find("history_length")->as_int64(), 512);
  EXPECT_EQ(j->Find("n_ctx")->as_int64(), 1536);
  EXPECT_EQ(j->Find("torch_dtype")->as_string(), "float16");
  EXPECT_EQ(j->Find("n_att_experts")->as_int64(), 5);
  EXPECT_EQ(j->Find("n_mlp_experts")->as_int64(), 8);
  EXPECT_NE(text.find("\"layer_norm_epsilon\": 1e-05"), std::string::npos) << text;
  auto back = ParseHfConfig(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->n_layer, 3);
  EXPECT_EQ(back->k_mlp, 3);
  EXPECT_EQ(back->bos_token_id, 299);
  EXPECT_EQ(back->dtype, DType::kF16);
  EXPECT_EQ(back->n_att_experts, (std::vector<int64_t>{5, 5, 5}));  // per-layer counts come from tensors
}

}  // namespace
}  // namespace brickrt
