// This host's store as ferryd opens it: the store directory, signed with the host's fleet key
// (the key of --tls-dir's host.crt), so a hold's manifest says which host sealed it.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "crypto/host_signer.h"
#include "crypto/openssl_util.h"
#include "store/store.h"

namespace ferry::hold {

struct HostStore {
  std::unique_ptr<crypto::HostSigner> signer;  // outlives the store, which signs with it
  crypto::X509Ptr certificate;
  std::unique_ptr<store::Store> store;
};

// Loads the host's credentials from `tls_dir` (checked as the peer port checks them) and opens
// the store at `store_dir`. Errors name the file or directory and say what to do.
Result<HostStore> OpenHostStore(const std::string& store_dir, const std::string& tls_dir);

}  // namespace ferry::hold
