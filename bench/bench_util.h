// Shared by the benchmarks: percentiles of timings, and "--name VALUE" flags into option fields.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace brickrt::bench {

// The p-quantile (0..1) of v by nearest rank below; 0 for no samples.
inline double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

using FlagTarget = std::variant<int*, int64_t*, uint32_t*, double*>;

// Reads "--name VALUE" pairs into the fields named in `flags`; unknown names are ignored (these are
// measurement tools, not user commands).
inline void ParseFlags(int argc, char** argv, const std::vector<std::pair<std::string, FlagTarget>>& flags) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char* v = argv[i + 1];
    for (const auto& [name, target] : flags) {
      if (name != argv[i]) continue;
      std::visit(
          [v](auto* field) {
            using T = std::remove_pointer_t<decltype(field)>;
            if constexpr (std::is_same_v<T, double>) {
              *field = std::atof(v);
            } else {
              *field = static_cast<T>(std::atoll(v));
            }
          },
          target);
    }
  }
}

}  // namespace brickrt::bench
