// triadd: serves triad.v1.Triad plus the standard health and reflection services and
// Prometheus metrics on http://HOST:metrics_port/metrics (HOST is the gRPC listen host) at once,
// and loads the configured models in the background: while a model loads its health is
// NOT_SERVING, GetModel says LOADING and its requests get UNAVAILABLE; the overall health turns
// SERVING when every model has finished loading and at least one is ready. Drains on
// SIGTERM/SIGINT (health NOT_SERVING, new requests UNAVAILABLE, in-flight requests finish
// within the grace period), then exits 0.
//
// TRIADD_TEST_LOAD_DELAY_MS (tests only): sleep this long before loading each model, so tests
// can observe the loading state.
#include <ATen/Parallel.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/debugging/failure_signal_handler.h"
#include "absl/debugging/symbolize.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/request_log.h"
#include "server/service.h"

namespace {

// Blocks SIGTERM/SIGINT in every thread (call before any thread starts) so one thread can
// sigwait for them.
sigset_t BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t signals = BlockShutdownSignals();
  // A crash prints the faulting thread's symbolized stack to stderr (the pod's log), then dies
  // of the same signal. SIGTERM is in absl's list too, but it stays blocked in every thread and
  // reaches only the sigwait below.
  absl::InitializeSymbolizer(argv[0]);
  absl::InstallFailureSignalHandler(absl::FailureSignalHandlerOptions());
  auto config = triad::ConfigFromFlags(argc, argv);
  if (!config.ok()) {
    std::cerr << "triadd: " << config.status().message() << "\n";
    return 2;
  }
  at::set_num_threads(config->threads > 0 ? config->threads
                                          : static_cast<int>(std::thread::hardware_concurrency()));
  // Declared before the models: the schedulers report to it until they are destroyed.
  auto metrics = std::make_shared<triad::Metrics>(TRIAD_VERSION, TRIAD_TORCH_VERSION);
  std::map<std::string, std::unique_ptr<triad::ServedModel>> models;
  for (const triad::ModelServingConfig& m : config->models) {
    models[m.name] = std::make_unique<triad::ServedModel>();
    models[m.name]->config = m;  // state kLoading
  }
  // Declared after the models: scrapes read the schedulers' stats, so it stops first.
  std::unique_ptr<triad::MetricsHttpServer> metrics_server;
  if (config->metrics_port > 0) {
    const std::string host = config->listen.substr(0, config->listen.rfind(':'));
    auto started = triad::MetricsHttpServer::Start(host, config->metrics_port, metrics);
    if (!started.ok()) {
      std::cerr << "triadd: " << started.status().message() << "\n";
      return 1;
    }
    metrics_server = *std::move(started);
    std::cerr << "triadd: metrics on http://" << host << ":" << config->metrics_port
              << "/metrics\n";
  }
  // Validate() admitted only the names ParseRequestLogLevel knows.
  const triad::RequestLog request_log(
      triad::ParseRequestLogLevel(config->request_log).value_or(triad::RequestLogLevel::kErrors));
  triad::TriadService service(&models, {metrics.get(), &request_log});
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config->listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "triadd: cannot listen on " << config->listen << "\n";
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  for (const auto& [name, served] : models) health->SetServingStatus(name, false);  // loading
  health->SetServingStatus("", false);
  std::cerr << "triadd: listening on " << config->listen << " (port " << port << ")\n";
  std::atomic<bool> stop_loading{false}, loading_done{false};
  std::thread loader([&] {
    const char* delay = std::getenv("TRIADD_TEST_LOAD_DELAY_MS");
    bool any_ready = false;
    for (auto& [name, served] : models) {
      if (stop_loading) break;
      if (delay != nullptr) std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(delay)));
      triad::LoadServedModel(*served, metrics.get());
      const bool ready = served->state == triad::ServingState::kReady;
      if (ready) {
        std::cerr << "triadd: model " << name << " ready (" << served->load_seconds << " s)\n";
      } else if (served->state == triad::ServingState::kFailed) {
        std::cerr << "triadd: model " << name << " failed to load: " << served->error << "\n";
      }
      if (!stop_loading) health->SetServingStatus(name, ready);
      any_ready = any_ready || ready;
    }
    if (!stop_loading) health->SetServingStatus("", any_ready);
    loading_done = true;
  });

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::cerr << "triadd: signal " << signal_number << ", draining\n";
  stop_loading = true;
  health->SetServingStatus(false);
  // Only models that were ready are drained: one still loading belongs to the loader thread.
  std::vector<triad::ServedModel*> serving;
  for (auto& [name, served] : models) {
    auto ready = triad::ServingState::kReady, loading = triad::ServingState::kLoading;
    if (served->state.compare_exchange_strong(ready, triad::ServingState::kDraining)) {
      serving.push_back(served.get());
    } else {
      served->state.compare_exchange_strong(loading, triad::ServingState::kDraining);
    }
  }
  const bool loaded = loading_done;
  if (loaded) loader.join();
  const auto grace = std::chrono::milliseconds(config->shutdown_grace_ms);
  std::vector<std::thread> drains;  // every model drains at once, within one grace period
  for (triad::ServedModel* served : serving) {
    drains.emplace_back([served, grace] { served->scheduler->Shutdown(grace); });
  }
  for (std::thread& t : drains) t.join();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!loaded) {
    // A model is still loading (it cannot be interrupted): leave without waiting for it.
    std::cerr << "triadd: stopped while loading\n";
    std::fflush(stderr);
    std::_Exit(0);
  }
  std::cerr << "triadd: stopped\n";
  return 0;
}
