// Shared by the scheduler tests: the tiny fixture models.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "model/model.h"
#include "tests/server/test_device.h"

namespace triad::testing {

// tests/data/models/<name> in float32 on TestDevice() (a test failure when it does not load).
inline std::unique_ptr<Model> LoadFixtureModel(const std::string& name) {
  LoadOptions options;
  options.device = TestDevice();
  auto model = LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/" + name, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return std::move(model).value();
}

}  // namespace triad::testing
