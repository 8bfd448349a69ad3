// Checks that the generated API library links: messages round-trip through the wire format
// and the gRPC stub can be created against a channel.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "triad/v1/triad.grpc.pb.h"
#include "triad/v1/triad.pb.h"

namespace triad {
namespace {

TEST(ProtoTest, ModelInfoRoundTrips) {
  v1::ListModelsResponse response;
  v1::ModelInfo* info = response.add_models();
  info->set_name("llama-tiny");
  info->set_family(v1::MODEL_FAMILY_LLAMA);
  info->set_context_length(256);
  std::string wire;
  ASSERT_TRUE(response.SerializeToString(&wire));
  v1::ListModelsResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  ASSERT_EQ(parsed.models_size(), 1);
  EXPECT_EQ(parsed.models(0).name(), "llama-tiny");
  EXPECT_EQ(parsed.models(0).family(), v1::MODEL_FAMILY_LLAMA);
  EXPECT_EQ(parsed.models(0).context_length(), 256);
}

TEST(ProtoTest, GenerateRequestOneofAndOptionalsRoundTrip) {
  v1::GenerateRequest request;
  request.set_model("t5-tiny");
  request.mutable_token_ids()->add_ids(5);
  request.mutable_token_ids()->add_ids(17);
  request.mutable_sampling()->set_temperature(0.0f);
  request.mutable_sampling()->add_stop("\n\n");
  std::string wire;
  ASSERT_TRUE(request.SerializeToString(&wire));
  v1::GenerateRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.input_case(), v1::GenerateRequest::kTokenIds);
  EXPECT_EQ(parsed.token_ids().ids_size(), 2);
  // An explicit 0 temperature (greedy) is distinguishable from unset.
  EXPECT_TRUE(parsed.sampling().has_temperature());
  EXPECT_FALSE(parsed.sampling().has_top_p());
  EXPECT_FALSE(parsed.has_add_special_tokens());
}

TEST(ProtoTest, StubCallsFailCleanlyWithoutServer) {
  auto channel = grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  auto stub = v1::Triad::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  v1::ListModelsResponse response;
  grpc::Status status = stub->ListModels(&context, v1::ListModelsRequest(), &response);
  EXPECT_FALSE(status.ok());
}

}  // namespace
}  // namespace triad
