// Authenticated encryption and keyed hashes, thin over OpenSSL 3's EVP: AES-256-GCM with a
// 12-byte nonce and a 16-byte tag, and HMAC-SHA256. The store seals chunks, chunk tables and
// wrapped keys with these; nothing here knows about files.
//
// Thread-safety: every function may be called from any thread at once.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::crypto {

inline constexpr size_t kAeadKeyBytes = 32;
inline constexpr size_t kAeadNonceBytes = 12;
inline constexpr size_t kAeadTagBytes = 16;
inline constexpr size_t kHmacSha256Bytes = 32;

// Encrypts `plaintext` under `key` and `nonce`, authenticating `aad` with it, and appends the
// ciphertext (as long as the plaintext) and then the tag to `out`. A (key, nonce) pair must
// never seal two different plaintexts. A key or nonce of the wrong size is InvalidArgument.
Status AeadSeal(std::string_view key, std::string_view nonce, std::string_view aad,
                std::string_view plaintext, std::string& out);

// The inverse of AeadSeal on `sealed` (ciphertext then tag): appends the plaintext to `out`.
// A wrong key, nonce or aad, a flipped bit, or a truncated input is Corruption
// ("authentication failed ..."), and nothing is appended then.
Status AeadOpen(std::string_view key, std::string_view nonce, std::string_view aad,
                std::string_view sealed, std::string& out);

// For keys that wrap other keys: a fresh random nonce per call, returned in front of the
// sealed bytes (nonce, ciphertext, tag: 28 bytes more than the plaintext).
Result<std::string> AeadSealWithRandomNonce(std::string_view key, std::string_view aad,
                                            std::string_view plaintext);
Result<std::string> AeadOpenWithNonce(std::string_view key, std::string_view aad,
                                      std::string_view boxed);

// HMAC-SHA256(key, label || data), 32 raw bytes. The label separates the uses of one key.
Result<std::string> HmacSha256(std::string_view key, std::string_view label, std::string_view data);

// `n` bytes from OpenSSL's CSPRNG; Internal if it fails (it never should once seeded).
Result<std::string> RandomBytes(size_t n);

// Overwrites a secret in memory before it is freed.
void Wipe(std::string& secret);

}  // namespace ferry::crypto
