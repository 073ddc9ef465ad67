// spdlog-backed loggers, created on first use per module name, writing to stderr.
#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>

namespace brickrt::log {
namespace {

std::atomic<Level> g_level{Level::kWarn};

spdlog::level::level_enum ToSpd(Level l) {
  switch (l) {
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
    case Level::kOff: return spdlog::level::off;
  }
  return spdlog::level::warn;
}

std::shared_ptr<spdlog::logger> Get(std::string_view module) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const std::string name(module);
  auto logger = spdlog::get(name);
  if (!logger) {
    logger = spdlog::stderr_color_mt(name);
    logger->set_pattern("[%H:%M:%S.%e] [%n] [%l] %v");
  }
  logger->set_level(ToSpd(g_level.load()));
  return logger;
}

void Emit(Level l, std::string_view module, const std::string& msg) {
  if (l < g_level.load()) return;
  Get(module)->log(ToSpd(l), msg);
}

}  // namespace

void SetLevel(Level level) {
  g_level.store(level);
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) { l->set_level(ToSpd(level)); });
}

bool ParseLevel(std::string_view s, Level* out) {
  if (s == "debug") *out = Level::kDebug;
  else if (s == "info") *out = Level::kInfo;
  else if (s == "warn") *out = Level::kWarn;
  else if (s == "error") *out = Level::kError;
  else if (s == "off") *out = Level::kOff;
  else return false;
  return true;
}

void Debug(std::string_view m, const std::string& msg) { Emit(Level::kDebug, m, msg); }
void Info(std::string_view m, const std::string& msg) { Emit(Level::kInfo, m, msg); }
void Warn(std::string_view m, const std::string& msg) { Emit(Level::kWarn, m, msg); }
void Error(std::string_view m, const std::string& msg) { Emit(Level::kError, m, msg); }

}  // namespace brickrt::log
