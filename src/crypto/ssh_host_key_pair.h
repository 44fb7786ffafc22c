// A fresh ed25519 SSH host key for a clone, made from the host's CSPRNG, in the form the guest's
// reset_identity takes: the 32-byte private seed, then the 32-byte public key. Making it here
// spares the emulated guest a program start; the key never leaves the host but to the guest.
#pragma once

#include <string>

#include "core/status.h"

namespace ferry::crypto {

Result<std::string> NewSshHostKeyPair();

}  // namespace ferry::crypto
