// CURVE keys: generation through libzmq, key files read and written with POSIX calls so the secret
// key's permissions are set at creation and checked on reading.
#include "node/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <zmq.h>

namespace brickrt::curve {
namespace {

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
constexpr size_t kMaxKeyFileBytes = 4096;

std::string Trim(std::string s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && blank(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && blank(s[i])) ++i;
  return s.substr(i);
}

Result<std::string> ReadKeyFile(const std::string& path, const char* what, bool secret) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound(std::string(what) + " file " + path + " does not exist (see brick keygen)");
    return IoError(std::string("cannot open ") + what + " file " + path + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(std::string(what) + " file " + path + " is not a regular file");
  }
  if (secret && (st.st_mode & 0077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return InvalidArgument(std::string(what) + " file " + path + " has mode " + mode +
                           ": other users may read it; refusing it (chmod 600 " + path + ")");
  }
  std::string text;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return IoError(std::string("cannot read ") + what + " file " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxKeyFileBytes) break;
  }
  ::close(fd);
  const std::string key = Trim(text);
  if (text.size() > kMaxKeyFileBytes || key.size() != kZ85KeyChars) {
    return InvalidArgument(std::string(what) + " file " + path + " does not hold one key: expected one line of " +
                           std::to_string(kZ85KeyChars) + " Z85 characters, found " +
                           (text.size() > kMaxKeyFileBytes ? std::string("more than 4 KiB")
                                                           : std::to_string(key.size()) + " characters"));
  }
  BRICK_RETURN_IF_ERROR(CheckZ85Key(key, std::string(what) + " file " + path));
  return key;
}

Status WriteExclusive(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) return InvalidArgument(path + " exists already; refusing to overwrite a key file");
    return IoError("cannot create " + path + ": " + std::strerror(err));
  }
  // The umask may have taken bits away; never added any. Set exactly what was asked.
  bool ok = ::fchmod(fd, mode) == 0;
  size_t done = 0;
  while (ok && done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ok = false; else done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int err = errno;
  if (::close(fd) != 0) ok = false;
  if (!ok) {
    ::unlink(path.c_str());
    return IoError("cannot write " + path + ": " + std::strerror(err));
  }
  return Status::Ok();
}

}  // namespace

bool Available() { return zmq_has("curve") != 0; }

Status CheckAvailable() {
  if (Available()) return Status::Ok();
  return Unsupported("this libzmq was built without CURVE (zmq_has(\"curve\") is false); rebuild libzmq with "
                     "libsodium to use keys");
}

Result<KeyPair> GenerateKeyPair() {
  BRICK_RETURN_IF_ERROR(CheckAvailable());
  char pub[kZ85KeyChars + 1] = {}, sec[kZ85KeyChars + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0) return Internal(std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()));
  return KeyPair{std::string(pub, kZ85KeyChars), std::string(sec, kZ85KeyChars)};
}

Status CheckZ85Key(const std::string& key, const std::string& what) {
  if (key.size() != kZ85KeyChars) {
    return InvalidArgument(what + ": a CURVE key is " + std::to_string(kZ85KeyChars) + " Z85 characters, got " +
                           std::to_string(key.size()));
  }
  for (size_t i = 0; i < key.size(); ++i) {
    if (kZ85Alphabet.find(key[i]) == std::string_view::npos) {
      return InvalidArgument(what + ": not a Z85 key (character " + std::to_string(i + 1) +
                             " is outside the Z85 alphabet)");
    }
  }
  uint8_t raw[32];
  if (zmq_z85_decode(raw, key.c_str()) == nullptr) return InvalidArgument(what + ": not a Z85 key");
  return Status::Ok();
}

Result<std::string> PublicKeyOf(const std::string& secret_key) {
  BRICK_RETURN_IF_ERROR(CheckAvailable());
  BRICK_RETURN_IF_ERROR(CheckZ85Key(secret_key, "secret key"));
  char pub[kZ85KeyChars + 1] = {};
  if (zmq_curve_public(pub, secret_key.c_str()) != 0) {
    return InvalidArgument(std::string("secret key: zmq_curve_public: ") + zmq_strerror(zmq_errno()));
  }
  return std::string(pub, kZ85KeyChars);
}

Result<std::string> ReadPublicKey(const std::string& path) { return ReadKeyFile(path, "public key", false); }
Result<std::string> ReadSecretKey(const std::string& path) { return ReadKeyFile(path, "secret key", true); }

std::string PublicKeyPathFor(const std::string& secret_key_path) {
  const std::string ext = ".key";
  if (secret_key_path.size() > ext.size() &&
      secret_key_path.compare(secret_key_path.size() - ext.size(), ext.size(), ext) == 0) {
    return secret_key_path.substr(0, secret_key_path.size() - ext.size()) + ".pub";
  }
  return secret_key_path + ".pub";
}

Status WriteKeyPair(const std::string& secret_path, const KeyPair& keys) {
  BRICK_RETURN_IF_ERROR(CheckZ85Key(keys.secret_key, "secret key"));
  BRICK_RETURN_IF_ERROR(CheckZ85Key(keys.public_key, "public key"));
  const std::string pub_path = PublicKeyPathFor(secret_path);
  struct stat st {};
  if (::lstat(secret_path.c_str(), &st) == 0) {
    return InvalidArgument(secret_path + " exists already; refusing to overwrite a key file");
  }
  if (::lstat(pub_path.c_str(), &st) == 0) {
    return InvalidArgument(pub_path + " exists already; refusing to overwrite a key file");
  }
  BRICK_RETURN_IF_ERROR(WriteExclusive(secret_path, keys.secret_key + "\n", 0600));
  Status st_pub = WriteExclusive(pub_path, keys.public_key + "\n", 0644);
  if (!st_pub.ok()) {
    ::unlink(secret_path.c_str());
    return st_pub;
  }
  return Status::Ok();
}

}  // namespace brickrt::curve
