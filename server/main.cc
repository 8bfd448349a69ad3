// triadd: loads the configured models, serves triad.v1.Triad plus the standard health and
// reflection services and Prometheus metrics on http://HOST:metrics_port/metrics (HOST is the
// gRPC listen host), and drains on SIGTERM/SIGINT (health NOT_SERVING, new requests
// UNAVAILABLE, in-flight requests finish within the grace period), then exits 0.
#include <ATen/Parallel.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "server/config.h"
#include "server/metrics.h"
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
    models[m.name] = triad::LoadServedModel(m, metrics.get());
    const triad::ServedModel& served = *models[m.name];
    if (served.state == triad::ServingState::kFailed) {
      std::cerr << "triadd: model " << m.name << " failed to load: " << served.error << "\n";
    } else {
      std::cerr << "triadd: model " << m.name << " ready (" << served.load_seconds << " s)\n";
    }
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
  triad::TriadService service(&models, metrics.get());
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
  bool any_ready = false;
  for (const auto& [name, served] : models) {
    const bool ready = served->state == triad::ServingState::kReady;
    health->SetServingStatus(name, ready);
    any_ready = any_ready || ready;
  }
  health->SetServingStatus("", any_ready);
  std::cerr << "triadd: listening on " << config->listen << " (port " << port << ")\n";

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::cerr << "triadd: signal " << signal_number << ", draining\n";
  health->SetServingStatus(false);
  for (auto& [name, served] : models) {
    if (served->state == triad::ServingState::kReady) served->state = triad::ServingState::kDraining;
  }
  const auto grace = std::chrono::milliseconds(config->shutdown_grace_ms);
  std::vector<std::thread> drains;  // every model drains at once, within one grace period
  for (auto& [name, served] : models) {
    if (served->scheduler) {
      drains.emplace_back([&served = served, grace] { served->scheduler->Shutdown(grace); });
    }
  }
  for (std::thread& t : drains) t.join();
  for (auto& [name, served] : models) {  // beam searches finish (they cannot be cancelled)
    while (served->direct_in_flight > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::cerr << "triadd: stopped\n";
  return 0;
}
