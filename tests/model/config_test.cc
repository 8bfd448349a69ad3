// ModelConfig parsing: HF defaults for keys save_pretrained leaves out, and errors that name
// the file and key.
#include <gtest/gtest.h>

#include "model/config.h"

namespace triad {
namespace {

const std::string kDir = std::string(TRIAD_TEST_DATA_DIR) + "/models/";

TEST(ConfigTest, FixturesParseWithHfDefaults) {
  auto gpt = LoadModelConfig(kDir + "gpt1-tiny");
  ASSERT_TRUE(gpt.ok()) << gpt.status();
  EXPECT_EQ(gpt->family, Family::kGpt1);
  EXPECT_TRUE(gpt->tie_word_embeddings);  // absent: PretrainedConfig default
  EXPECT_EQ(gpt->activation, "gelu_new");
  EXPECT_EQ(gpt->head_dim, 16);
  EXPECT_EQ(gpt->intermediate_size, 256);
  EXPECT_TRUE(gpt->eos_token_ids.empty());

  auto t5 = LoadModelConfig(kDir + "t5-tiny");
  ASSERT_TRUE(t5.ok()) << t5.status();
  EXPECT_TRUE(t5->tie_word_embeddings);
  EXPECT_FALSE(t5->gated_ff);
  EXPECT_EQ(t5->decoder_start_token_id, 0);
  EXPECT_EQ(t5->eos_token_ids, std::vector<int64_t>{1});

  auto t5v11 = LoadModelConfig(kDir + "t5-v1_1-tiny");
  ASSERT_TRUE(t5v11.ok()) << t5v11.status();
  EXPECT_TRUE(t5v11->gated_ff);
  EXPECT_EQ(t5v11->activation, "gelu_new");
  EXPECT_FALSE(t5v11->tie_word_embeddings);

  auto llama3 = LoadModelConfig(kDir + "llama3-tiny");
  ASSERT_TRUE(llama3.ok()) << llama3.status();
  EXPECT_EQ(llama3->rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_DOUBLE_EQ(llama3->rope_scaling.factor, 32.0);
  EXPECT_EQ(llama3->num_kv_heads, 2);
  EXPECT_TRUE(llama3->tie_word_embeddings);

  auto cls = LoadModelConfig(kDir + "gpt1-tiny-cls");
  ASSERT_TRUE(cls.ok()) << cls.status();
  EXPECT_EQ(cls->head, HeadKind::kSequenceClassification);
  EXPECT_EQ(cls->id2label, (std::vector<std::string>{"entailment", "neutral", "contradiction"}));
  auto mc = LoadModelConfig(kDir + "gpt1-tiny-mc");
  ASSERT_TRUE(mc.ok()) << mc.status();
  EXPECT_EQ(mc->num_labels, 1);
}

TEST(ConfigTest, LlamaDefaultsToUntiedAndDerivesHeadDim) {
  auto c = ParseModelConfig(R"({"model_type":"llama","hidden_size":64,"num_attention_heads":4,
      "num_hidden_layers":1,"intermediate_size":8,"vocab_size":10,"eos_token_id":[7,9]})",
                            "", "x/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->num_kv_heads, 4);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{7, 9}));
}

TEST(ConfigTest, T5InnerWidthMayDifferFromModelWidth) {
  auto c = ParseModelConfig(R"({"model_type":"t5","d_model":64,"d_kv":8,"num_heads":4})", "",
                            "x/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->attention_width(), 32);
  EXPECT_EQ(c->hidden_size, 64);
}

TEST(ConfigTest, GenerationConfigOverridesTokens) {
  auto c = ParseModelConfig(R"({"model_type":"llama","eos_token_id":2})",
                            R"({"eos_token_id":[5,6],"pad_token_id":3})", "d/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(c->pad_token_id, 3);
}

struct BadConfig {
  const char* json;
  const char* must_mention;
};

TEST(ConfigTest, ErrorsNameFileAndKey) {
  const BadConfig cases[] = {
      {R"({"model_type":"gpt2"})", "model_type"},
      {R"({"model_type":"llama","rope_scaling":{"rope_type":"dynamic","factor":2.0}})",
       "rope_scaling"},
      {R"({"model_type":"llama","hidden_size":"big"})", "hidden_size"},
      {R"({"model_type":"llama","num_attention_heads":6,"num_key_value_heads":4})",
       "num_key_value_heads"},
      {R"({"model_type":"t5","feed_forward_proj":"gated-tanhshrink"})", "feed_forward_proj"},
      {R"({"model_type":"openai-gpt","n_embd":-4})", "n_embd"},
      {R"({"model_type":"openai-gpt","id2label":{"7":"x"}})", "id2label"},
      // Found by fuzzing: -8 used to throw std::length_error out of the parser.
      {R"({"model_type":"llama","num_labels":-8})", "\"num_labels\": must be 0..65536, got -8"},
      {R"({"model_type":"llama","num_labels":65537})", "\"num_labels\": must be 0..65536"},
      {R"([1,2])", "not a JSON object"},
      {R"({"model_type": )", "invalid JSON"},
  };
  for (const BadConfig& bad : cases) {
    auto c = ParseModelConfig(bad.json, "", "dir/config.json");
    ASSERT_FALSE(c.ok()) << bad.json;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << bad.json;
    EXPECT_NE(c.status().message().find("dir/config.json"), std::string::npos) << c.status();
    EXPECT_NE(c.status().message().find(bad.must_mention), std::string::npos) << c.status();
  }
}

TEST(ConfigTest, MissingFolderIsNotFound) {
  auto c = LoadModelConfig("/nonexistent/model");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("/nonexistent/model/config.json"), std::string::npos);
}

}  // namespace
}  // namespace triad
