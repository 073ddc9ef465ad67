// ZeroMQ CURVE keys for brick nodes and coordinators (issue #5, DESIGN.md "Secure").
//
// Key file format (what `brick keygen` writes): one line holding the 32-byte key as 40 Z85
// characters (ZeroMQ's Z85 alphabet), followed by one newline; nothing else (surrounding blanks
// and line ends are tolerated on reading). NAME.key holds the secret key and must not be readable
// or writable by anyone but its owner (mode 0600); NAME.pub holds the matching public key.
#pragma once

#include <string>

#include "core/status.h"

namespace brickrt::curve {

constexpr size_t kZ85KeyChars = 40;  // a 32-byte CURVE key in Z85

// Whether the linked libzmq has the CURVE mechanism (zmq_has("curve")).
bool Available();
// Unsupported "... libzmq built without CURVE ..." when !Available(), else Ok.
Status CheckAvailable();

struct KeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
};

// A fresh key pair (zmq_curve_keypair). Unsupported without CURVE.
Result<KeyPair> GenerateKeyPair();
// The public key of a Z85 secret key (zmq_curve_public). InvalidArgument for a malformed key.
Result<std::string> PublicKeyOf(const std::string& secret_key);

// InvalidArgument naming `what` unless `key` is 40 characters of the Z85 alphabet.
Status CheckZ85Key(const std::string& key, const std::string& what);

// Reads a key file. Errors: NotFound (missing), IoError (unreadable), InvalidArgument (not one line
// of 40 Z85 characters), each naming the file. ReadSecretKey also refuses (InvalidArgument) a file
// that is not a regular file or that its group or others may read or write ("chmod 600 FILE").
Result<std::string> ReadPublicKey(const std::string& path);
Result<std::string> ReadSecretKey(const std::string& path);

// The public-key file that goes with a secret-key file: "NAME.key" -> "NAME.pub", else PATH + ".pub".
std::string PublicKeyPathFor(const std::string& secret_key_path);

// Writes `secret_path` (mode 0600, created exclusively) and PublicKeyPathFor(secret_path) (mode 0644,
// created exclusively). Refuses (InvalidArgument "... exists already ...") when either file exists;
// nothing is left behind on failure.
Status WriteKeyPair(const std::string& secret_path, const KeyPair& keys);

}  // namespace brickrt::curve
