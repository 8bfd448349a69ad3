// Shared by the scheduler tests: the tiny fixture models.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "model/model.h"

namespace triad::testing {

// tests/data/models/<name> in float32 on the CPU (a test failure when it does not load).
inline std::unique_ptr<Model> LoadFixtureModel(const std::string& name) {
  auto model = LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/" + name, LoadOptions());
  EXPECT_TRUE(model.ok()) << model.status();
  return std::move(model).value();
}

}  // namespace triad::testing
