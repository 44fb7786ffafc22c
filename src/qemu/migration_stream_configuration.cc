// The reader's steps over the stream's configuration section and its subsections.
#include "qemu/migration_stream.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "qemu/migration_stream_format.h"

namespace ferry::qemu {

bool MachineSendsSwitchoverStart(std::string_view machine_type) {
  for (std::string_view prefix : {std::string_view("pc-q35-"), std::string_view("pc-i440fx-")}) {
    if (machine_type.substr(0, prefix.size()) != prefix) continue;
    const std::string_view version = machine_type.substr(prefix.size());
    int major = 0;
    size_t i = 0;
    for (; i < version.size() && i < 3 && version[i] >= '0' && version[i] <= '9'; ++i) {
      major = major * 10 + (version[i] - '0');
    }
    if (i == 0 || i >= version.size() || version[i] != '.') return false;
    return major >= 10;
  }
  return false;
}

// The configuration section, up to each subsection's value.
Status MigrationStreamReader::StepConfiguration(const uint8_t* item) {
  const size_t n = need_;
  auto keep = [&] { other_.insert(other_.end(), item, item + n); };
  switch (state_) {
    case State::kConfigType:
      keep();
      if (item[0] != kVmConfiguration) {
        return Refuse(item_offset_,
                      "no configuration section after the header (type " + Hex(item[0]) + ")");
      }
      Expect(State::kConfigNameLength, 4);
      return Status::Ok();
    case State::kConfigNameLength: {
      keep();
      uint32_t len = Be32(item);
      if (len == 0 || len > kMaxMachineTypeBytes) {
        return Refuse(item_offset_, "machine type of " + std::to_string(len) + " bytes (1 to " +
                                        std::to_string(kMaxMachineTypeBytes) + " allowed)");
      }
      Expect(State::kConfigName, len);
      return Status::Ok();
    }
    case State::kConfigName:
      keep();
      machine_type_.assign(reinterpret_cast<const char*>(item), n);
      Expect(State::kAfterConfig, 1);
      return Status::Ok();
    case State::kAfterConfig:
      if (item[0] != kVmSubsection) return StepSectionType(item[0]);
      keep();
      Expect(State::kSubsectionNameLength, 1);
      return Status::Ok();
    case State::kSubsectionNameLength:
      keep();
      if (item[0] == 0) return Refuse(item_offset_, "configuration subsection without a name");
      Expect(State::kSubsectionName, item[0]);
      return Status::Ok();
    case State::kSubsectionName:
      keep();
      subsection_.assign(reinterpret_cast<const char*>(item), n);
      if (subsection_ != kSubsectionPageBits && subsection_ != kSubsectionCapabilities &&
          subsection_ != kSubsectionUuid) {
        return Refuse(item_offset_,
                      "unknown configuration subsection \"" + Printable(item, n) + "\"");
      }
      if (std::find(subsections_seen_.begin(), subsections_seen_.end(), subsection_) !=
          subsections_seen_.end()) {
        return Refuse(item_offset_, "configuration subsection \"" + subsection_ + "\" twice");
      }
      subsections_seen_.push_back(subsection_);
      Expect(State::kSubsectionVersion, 4);
      return Status::Ok();
    case State::kSubsectionVersion:
      keep();
      if (Be32(item) != 1) {
        return Refuse(item_offset_, "configuration subsection \"" + subsection_ + "\" of version " +
                                        std::to_string(Be32(item)) +
                                        ", only version 1 is understood");
      }
      if (subsection_ == kSubsectionPageBits)
        Expect(State::kPageBits, 4);
      else if (subsection_ == kSubsectionUuid)
        Expect(State::kUuid, 16);
      else
        Expect(State::kCapabilityCount, 4);
      return Status::Ok();
    default:
      break;
  }
  return Status::Internal("QEMU migration stream: StepConfiguration in state " +
                          std::string(Describe(state_)));
}

// A configuration subsection's value.
Status MigrationStreamReader::StepConfigurationValue(const uint8_t* item) {
  const size_t n = need_;
  auto keep = [&] { other_.insert(other_.end(), item, item + n); };
  switch (state_) {
    case State::kPageBits:
      keep();
      if (Be32(item) != kTargetPageBits) {
        return Refuse(item_offset_, "target page bits " + std::to_string(Be32(item)) +
                                        ", only 12 (4 KiB pages) is understood");
      }
      Expect(State::kAfterConfig, 1);
      return Status::Ok();
    case State::kUuid:
      keep();
      Expect(State::kAfterConfig, 1);
      return Status::Ok();
    case State::kCapabilityCount:
      keep();
      capabilities_left_ = Be32(item);
      if (capabilities_left_ > kMaxMigrationCapabilities) {
        return Refuse(item_offset_, std::to_string(capabilities_left_) +
                                        " migration capabilities (at most " +
                                        std::to_string(kMaxMigrationCapabilities) + ")");
      }
      Expect(capabilities_left_ ? State::kCapabilityNameLength : State::kAfterConfig, 1);
      return Status::Ok();
    case State::kCapabilityNameLength:
      keep();
      if (item[0] == 0) return Refuse(item_offset_, "migration capability without a name");
      Expect(State::kCapabilityName, item[0]);
      return Status::Ok();
    case State::kCapabilityName: {
      keep();
      std::string name(reinterpret_cast<const char*>(item), n);
      // x-ignore-shared is the only capability QEMU 7.2 sends, and the one that changes the
      // block list's layout; any other would change the stream in ways not understood here.
      if (name != "x-ignore-shared") {
        return Refuse(item_offset_,
                      "migration capability \"" + Printable(item, n) + "\" is not supported");
      }
      ignore_shared_ = true;
      --capabilities_left_;
      Expect(capabilities_left_ ? State::kCapabilityNameLength : State::kAfterConfig, 1);
      return Status::Ok();
    }
    default:
      break;
  }
  return Status::Internal("QEMU migration stream: StepConfigurationValue in state " +
                          std::string(Describe(state_)));
}

}  // namespace ferry::qemu
