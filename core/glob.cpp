// GlobMatch: greedy matching with backtracking to the last '*' (linear in practice, no recursion).
#include "core/glob.h"

namespace brickrt {

bool GlobMatch(std::string_view glob, std::string_view s) {
  size_t g = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (g < glob.size() && (glob[g] == '?' || glob[g] == s[i])) {
      ++g;
      ++i;
    } else if (g < glob.size() && glob[g] == '*') {
      star = g++;
      mark = i;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

}  // namespace brickrt
