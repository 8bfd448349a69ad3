// kernels-bench: weight-streaming GB/s of the triad linear kernels against ATen's own batch-1
// paths on TinyLlama-1.1B's layer shapes, beside the read-bandwidth probe measured in the same
// run. Prints one JSON object; every figure carries its ratio to the probe.
//
// Usage: kernels-bench [--threads=N] [--quick]
// Each call's weights are one of several copies cycled round-robin, together far larger than
// the last-level cache, so the figures are memory streaming as in a real decode step (every
// layer's weights once per token), not cache hits on one matrix.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/mv.h>
#include <ATen/ops/randn.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/kernels/bandwidth.h"
#include "model/kernels/linear.h"

namespace triad::kernels {
namespace {

struct Shape {
  int64_t out_features, in_features;
  int num_per_step;  // how many of these one decode step of the 1.1B model streams
};

// TinyLlama-1.1B: 22 layers of q/o (2048x2048), k/v (256x2048: 4 kv heads of 64),
// gate/up (5632x2048) and down (2048x5632), then the 32000x2048 lm_head.
const Shape kShapes[] = {
    {2048, 2048, 2 * 22}, {256, 2048, 2 * 22}, {5632, 2048, 2 * 22},
    {2048, 5632, 22},     {32000, 2048, 1},
};

struct Options {
  int num_threads = 2;
  double min_seconds = 0.3;            // per figure
  int64_t rotation_bytes = 512 << 20;  // weight copies cycled per figure
  size_t probe_bytes = size_t{1} << 30;
};

// Best per-call seconds over passes through all copies, for at least min_seconds.
double BestSecondsPerCall(int num_copies, double min_seconds,
                          const std::function<void(int)>& call) {
  using Clock = std::chrono::steady_clock;
  for (int c = 0; c < num_copies; ++c) call(c);  // warm-up: thread pool, page faults
  double best = 1e30, total = 0.0;
  for (int pass = 0; pass < 3 || total < min_seconds; ++pass) {
    const auto start = Clock::now();
    for (int c = 0; c < num_copies; ++c) call(c);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::min(best, seconds / num_copies);
    total += seconds;
  }
  return best;
}

// GB/s of weight bytes for each op at one shape, keyed "op/rows".
std::map<std::string, double> MeasureShape(const Shape& shape, const Options& options) {
  const int64_t out = shape.out_features, in = shape.in_features;
  const int64_t f32_bytes = out * in * 4;
  const int num_copies = static_cast<int>(std::max<int64_t>(2, options.rotation_bytes / f32_bytes));
  std::vector<at::Tensor> w_f32, w_bf16;
  for (int c = 0; c < num_copies; ++c) {
    w_f32.push_back(at::randn({out, in}));
    w_bf16.push_back(w_f32.back().to(at::kBFloat16));
  }
  const at::Tensor bias = at::randn({out});
  std::map<std::string, double> gbs;
  auto record = [&](const std::string& name, int64_t rows, int64_t weight_bytes,
                    const std::function<void(int)>& call) {
    const double seconds = BestSecondsPerCall(num_copies, options.min_seconds, call);
    gbs[name + "/" + std::to_string(rows)] = weight_bytes / seconds / 1e9;
  };
  for (int64_t rows : {1, 8, 16}) {
    const at::Tensor x = at::randn({rows, in});
    const at::Tensor x_bf16 = x.to(at::kBFloat16);
    at::Tensor y = at::empty({rows, out});
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    record("triad_bf16", rows, f32_bytes / 2, [&](int c) {
      LinearBf16(xp, rows, reinterpret_cast<const uint16_t*>(w_bf16[c].data_ptr()),
                 bias.data_ptr<float>(), yp, in, out);
    });
    record("triad_f32", rows, f32_bytes, [&](int c) {
      LinearF32(xp, rows, w_f32[c].data_ptr<float>(), bias.data_ptr<float>(), yp, in, out);
    });
    record("aten_linear_f32", rows, f32_bytes, [&](int c) { at::linear(x, w_f32[c], bias); });
    record("aten_linear_bf16", rows, f32_bytes / 2, [&](int c) { at::linear(x_bf16, w_bf16[c]); });
    if (rows == 1) {
      const at::Tensor x1 = x.reshape({in});
      record("aten_mv_f32", rows, f32_bytes, [&](int c) { at::mv(w_f32[c], x1); });
    }
  }
  return gbs;
}

Options ParseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      options.num_threads = std::max(1, std::atoi(argv[i] + 10));
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      options.min_seconds = 0.05;
      options.rotation_bytes = 128 << 20;
      options.probe_bytes = size_t{256} << 20;
    } else {
      std::fprintf(stderr, "usage: %s [--threads=N] [--quick]\n", argv[0]);
      std::exit(2);
    }
  }
  return options;
}

int Main(int argc, char** argv) {
  const Options options = ParseOptions(argc, argv);
  at::set_num_threads(options.num_threads);
  const double probe_before = MeasureReadBandwidthGBs(options.probe_bytes, options.num_threads, 5);

  nlohmann::json shapes = nlohmann::json::object();
  // Whole decode step: bytes over summed seconds, per op and row count.
  std::map<std::string, std::pair<double, double>> step;  // name -> {bytes, seconds}
  for (const Shape& shape : kShapes) {
    const std::string name =
        std::to_string(shape.out_features) + "x" + std::to_string(shape.in_features);
    for (const auto& [op, gbs] : MeasureShape(shape, options)) {
      shapes[name][op] = {{"gbs", gbs}};
      const bool bf16 = op.find("bf16") != std::string::npos;
      const double bytes = shape.num_per_step * static_cast<double>(shape.out_features) *
                           shape.in_features * (bf16 ? 2 : 4);
      step[op].first += bytes;
      step[op].second += bytes / (gbs * 1e9);
    }
  }
  const double probe_after = MeasureReadBandwidthGBs(options.probe_bytes, options.num_threads, 5);
  // The higher probe is the roofline: ratios are then never flattered by a slow probe run.
  const double probe = std::max(probe_before, probe_after);
  for (auto& [name, ops] : shapes.items()) {
    for (auto& [op, figure] : ops.items()) {
      figure["ratio"] = figure["gbs"].get<double>() / probe;
    }
  }
  nlohmann::json decode_step = nlohmann::json::object();
  for (const auto& [op, totals] : step) {
    const double gbs = totals.first / totals.second / 1e9;
    decode_step[op] = {{"gbs", gbs}, {"ratio", gbs / probe}, {"ms", totals.second * 1e3}};
  }
  const nlohmann::json report = {
      {"isa", std::string(KernelIsa())},
      {"threads", options.num_threads},
      {"probe_gbs", probe},
      {"probe_before_gbs", probe_before},
      {"probe_after_gbs", probe_after},
      {"shapes", shapes},
      {"tinyllama_decode_step", decode_step},
  };
  std::printf("%s\n", report.dump(2).c_str());
  return 0;
}

}  // namespace
}  // namespace triad::kernels

int main(int argc, char** argv) { return triad::kernels::Main(argc, argv); }
