// TriaddProcess: the real triadd binary on a random loopback port for end-to-end tests, with a
// config written from a JSON array of models; plus small HTTP helpers for /metrics.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/remove_tree.h"
#include "tests/server/test_device.h"

namespace triad::testing {

class TriaddProcess {
 public:
  // Writes <tmp>/<tag>_<pid>/triad.json (gRPC on `port`, metrics on `port + 1`, one LibTorch
  // thread) serving `models_json` (a JSON array of model entries, each placed on TestDevice()
  // unless it names its device, and with TestCudaGraphsEntry()'s "cuda_graphs") and starts
  // triadd on it with `env` added to its environment.
  void Start(const std::string& tag, std::string models_json,
             const std::vector<std::pair<std::string, std::string>>& env = {}) {
    namespace fs = std::filesystem;
    std::string added;  // keys put first in every model entry
    if (TestDevice() != "cpu" && models_json.find("\"device\"") == std::string::npos) {
      added += "\"device\": \"" + TestDevice() + "\", ";
    }
    added += TestCudaGraphsEntry();
    if (!added.empty()) {
      const std::string entry = "{\"name\":";
      const std::string placed = "{" + added + "\"name\":";
      for (size_t at = models_json.find(entry); at != std::string::npos;
           at = models_json.find(entry, at + placed.size())) {
        models_json.replace(at, entry.size(), placed);
      }
    }
    dir = fs::temp_directory_path() / (tag + "_" + std::to_string(getpid()));
    fs::create_directories(dir);
    std::mt19937 rng(std::random_device{}());
    port = 20000 + static_cast<int>(rng() % 30000);
    std::ofstream(dir / "triad.json")
        << R"({"listen": "127.0.0.1:)" << port << R"(", "metrics_port": )" << port + 1
        << R"(, "threads": 1, "shutdown_grace_ms": 10000, "models": )" << models_json << "}";
    // posix_spawn rather than fork + setenv + exec: this process has gRPC's threads and, on
    // a GPU, a CUDA context by now, and after fork() a multithreaded process may only call
    // async-signal-safe functions (setenv and std::string allocate), nor run the atfork
    // handlers its libraries registered. The environment is passed whole instead.
    std::vector<std::string> environment;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      const std::string key = entry.substr(0, entry.find('='));
      const bool replaced = std::any_of(env.begin(), env.end(),
                                        [&](const auto& kv) { return kv.first == key; });
      if (!replaced) environment.push_back(entry);
    }
    for (const auto& [key, value] : env) environment.push_back(key + "=" + value);
    const std::string config = (dir / "triad.json").string();
    std::vector<std::string> args = {"triadd", "--config", config};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    auto pointers = [](std::vector<std::string>& strings) {
      std::vector<char*> out;
      for (auto& s : strings) out.push_back(s.data());
      out.push_back(nullptr);
      return out;
    };
    std::vector<char*> argv = pointers(args), envp = pointers(environment);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string stderr_path = (dir / "stderr.log").string();
    if (capture_stderr) {
      posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    const int error = posix_spawn(&pid, TRIADD_BINARY, &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
      ADD_FAILURE() << "posix_spawn " << TRIADD_BINARY << ": " << std::strerror(error);
      pid = -1;
    }
    channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                  grpc::InsecureChannelCredentials());
  }

  // Kills the server (if still running) and removes its folder.
  void Stop() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      pid = -1;
    }
    if (!dir.empty()) RemoveTree(dir);
  }

  // Waits (up to 60 s) until the server accepts connections (models may still be loading).
  // Connecting explicitly avoids gRPC's reconnect backoff after an attempt made too early.
  bool WaitListening() const {
    return channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(60));
  }

  // The health service's status of `service` ("" = overall), or -1 when the check fails.
  int Health(const std::string& service) const {
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    return health->Check(&ctx, req, &resp).ok() ? static_cast<int>(resp.status()) : -1;
  }

  // Waits (up to 30 s after it listens) until the health service says SERVING (the models
  // are loaded).
  bool WaitServing() const {
    if (!WaitListening()) return false;
    for (int i = 0; i < 300; ++i) {
      if (Health("") == grpc::health::v1::HealthCheckResponse::SERVING) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // What triadd wrote to stderr, when capture_stderr was set before Start (else it goes to
  // the test's own stderr).
  std::string Stderr() const {
    std::ifstream in(dir / "stderr.log");
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  bool capture_stderr = false;
  std::vector<std::string> extra_args;  // flags after --config FILE, set before Start
  std::filesystem::path dir;
  int port = 0;
  pid_t pid = -1;
  std::shared_ptr<grpc::Channel> channel;
};

// GET http://127.0.0.1:port/path over a raw socket (HTTP/1.0: the server closes when done);
// the whole response, headers included, or "" when the connection fails.
inline std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      for (ssize_t n; (n = recv(fd, buffer, sizeof(buffer), 0)) > 0;) response.append(buffer, n);
    }
  }
  close(fd);
  return response;
}

// The value of the first sample of `text` whose line starts with `prefix`; -1 when none.
inline double Sample(const std::string& text, const std::string& prefix) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

}  // namespace triad::testing
