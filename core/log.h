// Logging: one named logger per module over spdlog. spdlog stays out of this header so modules
// do not depend on it; messages are preformatted strings (never log in hot loops).
#pragma once

#include <string>
#include <string_view>

namespace brickrt::log {

enum class Level { kDebug, kInfo, kWarn, kError, kOff };

// Sets the level of every logger, present and future. Default: kWarn (a CLI should be quiet).
void SetLevel(Level level);
// Parses "debug", "info", "warn", "error", "off".
bool ParseLevel(std::string_view s, Level* out);

void Debug(std::string_view module, const std::string& msg);
void Info(std::string_view module, const std::string& msg);
void Warn(std::string_view module, const std::string& msg);
void Error(std::string_view module, const std::string& msg);

}  // namespace brickrt::log
