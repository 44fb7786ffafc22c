#include "cli/http_reply_head.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace ferry::cli {
namespace {

TEST(HttpReplyHeadTest, HeaderNamesMatchWhateverTheirCase) {
  auto head = ParseHttpReplyHead(
      "HTTP/1.1 202 Accepted\r\ncontent-LENGTH:  17 \r\nCONNECTION: Keep-Alive, Close\r\n"
      "X-Other: ignored",
      "sock");
  ASSERT_TRUE(head.ok()) << head.status().message();
  EXPECT_EQ(head->status, 202);
  EXPECT_FALSE(head->http10);
  EXPECT_EQ(head->content_length, 17u);
  EXPECT_FALSE(head->has_transfer_encoding);
  EXPECT_TRUE(head->connection_close);
  EXPECT_TRUE(head->connection_keep_alive);
}

TEST(HttpReplyHeadTest, ChunkedOnlyWhenItIsTheLastCoding) {
  auto chunked = ParseHttpReplyHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked", "s");
  ASSERT_TRUE(chunked.ok());
  EXPECT_TRUE(chunked->chunked);
  auto not_chunked = ParseHttpReplyHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip", "s");
  ASSERT_TRUE(not_chunked.ok());
  EXPECT_TRUE(not_chunked->has_transfer_encoding);
  EXPECT_FALSE(not_chunked->chunked);
}

TEST(HttpReplyHeadTest, StatusLineWithoutReasonAndHttp10) {
  auto head = ParseHttpReplyHead("HTTP/1.0 404", "s");
  ASSERT_TRUE(head.ok()) << head.status().message();
  EXPECT_EQ(head->status, 404);
  EXPECT_TRUE(head->http10);
  EXPECT_FALSE(head->content_length.has_value());
}

TEST(HttpReplyHeadTest, HugeContentLengthSaturates) {
  auto head = ParseHttpReplyHead("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999", "s");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->content_length, UINT64_MAX);
}

TEST(HttpReplyHeadTest, MalformedHeadsAreCorruptionNamingThePeer) {
  for (const char* bad : {
           "HTTP/2 200 OK",                                              // not HTTP/1.x
           "HTTP/1.1 20 OK",                                             // two-digit status
           "HTTP/1.1 200OK",                                             // no space after status
           "HTTP/1.1 700 Odd",                                           // no such class
           "ICY 200 OK",                                                 // not HTTP
           "HTTP/1.1 200 OK\r\nNo-Colon",                                // header without colon
           "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded",                       // obsolete line folding
           "HTTP/1.1 200 OK\r\nBad Name: 1",                             // blank in a name
           "HTTP/1.1 200 OK\r\nContent-Length: 1x",                      // not a number
           "HTTP/1.1 200 OK\r\nContent-Length: -1",                      // not a number
           "HTTP/1.1 200 OK\r\nContent-Length:",                         // empty
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2",  // conflicting
       }) {
    auto head = ParseHttpReplyHead(bad, "/run/ferryd.sock");
    ASSERT_FALSE(head.ok()) << bad;
    EXPECT_EQ(head.status().code(), Status::Code::kCorruption) << bad;
    EXPECT_EQ(head.status().message().rfind("/run/ferryd.sock sent a malformed HTTP reply: ", 0),
              0u)
        << head.status().message();
  }
}

TEST(HttpReplyHeadTest, RepeatedEqualContentLengthIsAccepted) {
  auto head = ParseHttpReplyHead("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3", "s");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->content_length, 3u);
}

}  // namespace
}  // namespace ferry::cli
