// Shared by the scheduler tests: the tiny fixture models.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "model/model.h"
#include "tests/server/test_device.h"

namespace triad::testing {

// Float32 on TestDevice(): where the server tests put their models.
inline LoadOptions TestLoadOptions() {
  LoadOptions options;
  options.device = TestDevice();
  return options;
}

// tests/data/models/<name> with TestLoadOptions() (a test failure when it does not load).
inline std::unique_ptr<Model> LoadFixtureModel(const std::string& name) {
  auto model =
      LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/" + name, TestLoadOptions());
  EXPECT_TRUE(model.ok()) << model.status();
  return std::move(model).value();
}

}  // namespace triad::testing
