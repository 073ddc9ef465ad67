// ReadFileCapped.
#include "core/file.h"

#include <sys/stat.h>

#include <fstream>

namespace brickrt {

Result<std::string> ReadFileCapped(const std::string& path, size_t max_bytes) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return NotFound(path + ": no such file");
  if (!S_ISREG(st.st_mode)) return InvalidArgument(path + ": not a regular file");
  if (static_cast<size_t>(st.st_size) > max_bytes) {
    return InvalidArgument(path + ": " + std::to_string(st.st_size) + " bytes, more than the " +
                           std::to_string(max_bytes) + " such a file may have");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(path + ": cannot open for reading");
  std::string text(static_cast<size_t>(st.st_size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.gcount() != static_cast<std::streamsize>(text.size())) return IoError(path + ": read failed");
  return text;
}

}  // namespace brickrt
