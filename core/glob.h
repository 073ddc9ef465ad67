// Shell-style name patterns ('*' any run, '?' one character) for brick names, targets and placement
// rules.
#pragma once

#include <string_view>

namespace brickrt {

// True when `glob` matches the whole of `s`. No character classes or escapes.
bool GlobMatch(std::string_view glob, std::string_view s);

}  // namespace brickrt
