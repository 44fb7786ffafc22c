#include "migrate/peer_data_reader.h"

#include "migrate/migration_messages.h"

namespace ferry::migrate {

Status PeerDataReader::Fill() {
  if (ended_) {
    return Status::Corruption(link_.description() + ": the data stream ended early");
  }
  FERRY_ASSIGN_OR_RETURN(Frame frame, link_.Receive(idle_timeout_));
  switch (frame.type) {
    case FrameType::kData:
      if (pos_ > (1u << 20)) {
        buffer_.erase(0, pos_);
        pos_ = 0;
      }
      buffer_ += frame.payload;
      return Status::Ok();
    case FrameType::kStreamEnd:
      ended_ = true;
      return Status::Ok();
    case FrameType::kControl: {
      auto message = ParsePeerMessage(frame.payload);
      link_.Close();
      if (message.ok()) {
        if (auto* failed = std::get_if<FailedReply>(&*message)) {
          return Status::Unavailable("the peer failed: " + failed->error);
        }
        if (auto* abort = std::get_if<AbortRequest>(&*message)) {
          return Status::Unavailable("the peer gave up: " + abort->error);
        }
      }
      return Status::Corruption(link_.description() +
                                ": a control message inside the data stream; protocol out of step");
    }
    default:
      link_.Close();
      return Status::Corruption(link_.description() + ": unexpected " +
                                FrameTypeName(frame.type) + " frame in the data stream");
  }
}

Result<std::string> PeerDataReader::Read(size_t bytes) {
  while (buffer_.size() - pos_ < bytes) {
    if (ended_) {
      return Status::Corruption(link_.description() + ": the data stream ended " +
                                std::to_string(buffer_.size() - pos_) + " bytes into a record of " +
                                std::to_string(bytes));
    }
    FERRY_RETURN_IF_ERROR(Fill());
  }
  std::string out = buffer_.substr(pos_, bytes);
  pos_ += bytes;
  return out;
}

Result<bool> PeerDataReader::AtEnd() {
  while (buffer_.size() == pos_ && !ended_) FERRY_RETURN_IF_ERROR(Fill());
  return buffer_.size() == pos_;
}

}  // namespace ferry::migrate
