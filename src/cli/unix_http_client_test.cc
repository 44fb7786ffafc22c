#include "cli/unix_http_client.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "cli/test_http_server.h"

namespace ferry::cli {
namespace {

// UnixHttpClient against the server ferryd runs (httplib); unix_http_client_raw_test.cc has the
// replies httplib never sends.
class UnixHttpClientTest : public UnixSocketHttpServerTest {};

TEST_F(UnixHttpClientTest, GetReturnsStatusAndBody) {
  server_.Get("/v1/host", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"host_id":"h1"})", "application/json");
  });
  StartServer();
  UnixHttpClient client(path_);
  auto res = client.Request("GET", "/v1/host");
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, R"({"host_id":"h1"})");
}

TEST_F(UnixHttpClientTest, PostPutAndDeleteCarryBodiesAndStatusCodes) {
  auto echo = [](int status) {
    return [status](const httplib::Request& req, httplib::Response& res) {
      res.status = status;
      res.set_content(req.method + "|" + req.get_header_value("Content-Type") + "|" + req.body,
                      "text/plain");
    };
  };
  server_.Post("/v1/vms", echo(202));
  server_.Put("/v1/templates/t/pool", echo(200));
  server_.Delete("/v1/vms/missing", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"error":{"code":"not_found","message":"no VM missing"}})",
                    "application/json");
  });
  StartServer();
  UnixHttpClient client(path_);

  auto post = client.Request("POST", "/v1/vms", R"({"name":"web-1"})", "application/json");
  ASSERT_TRUE(post.ok()) << post.status().message();
  EXPECT_EQ(post->status, 202);
  EXPECT_EQ(post->body, R"(POST|application/json|{"name":"web-1"})");

  auto put = client.Request("PUT", "/v1/templates/t/pool", R"({"size":3})", "application/json");
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_EQ(put->status, 200);
  EXPECT_EQ(put->body, R"(PUT|application/json|{"size":3})");

  auto del = client.Request("DELETE", "/v1/vms/missing");
  ASSERT_TRUE(del.ok()) << del.status().message();
  EXPECT_EQ(del->status, 404);
  EXPECT_EQ(del->body, R"({"error":{"code":"not_found","message":"no VM missing"}})");

  auto unrouted = client.Request("GET", "/v1/nothing-here");
  ASSERT_TRUE(unrouted.ok()) << unrouted.status().message();
  EXPECT_EQ(unrouted->status, 404);
}

TEST_F(UnixHttpClientTest, LargeBodiesTravelBothWays) {
  // Larger than a UNIX socket's buffer, so sending waits for the server to read.
  const std::string big(3 * 1024 * 1024 + 7, 'x');
  server_.Post("/blob", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.body + "!", "application/octet-stream");
  });
  StartServer();
  UnixHttpClient client(path_);
  auto res = client.Request("POST", "/blob", big, "application/octet-stream");
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->body.size(), big.size() + 1);
  EXPECT_EQ(res->body, big + "!");
}

TEST_F(UnixHttpClientTest, ChunkedReplyIsReassembled) {
  const std::vector<std::string> chunks = {"alpha,", "beta,", std::string(100000, 'c'), "end"};
  server_.Get("/v1/stream", [&chunks](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/plain", [&chunks](size_t, httplib::DataSink& sink) {
      for (const auto& c : chunks) sink.write(c.data(), c.size());
      sink.done();
      return true;
    });
  });
  server_.Get("/v1/after", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("after", "text/plain");
  });
  StartServer();
  UnixHttpClient client(path_);
  auto res = client.Request("GET", "/v1/stream");
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, chunks[0] + chunks[1] + chunks[2] + chunks[3]);
  // The chunked body was consumed to its end: the next reply on the connection parses.
  auto after = client.Request("GET", "/v1/after");
  ASSERT_TRUE(after.ok()) << after.status().message();
  EXPECT_EQ(after->body, "after");
  EXPECT_EQ(connections_.load(), 1);
}

TEST_F(UnixHttpClientTest, RequestsShareOneConnection) {
  server_.Get("/n", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("n", "text/plain");
  });
  StartServer();
  UnixHttpClient client(path_);
  for (int i = 0; i < 3; ++i) {
    auto res = client.Request("GET", "/n");
    ASSERT_TRUE(res.ok()) << res.status().message();
    EXPECT_EQ(res->body, "n");
  }
  EXPECT_EQ(connections_.load(), 1);
}

TEST_F(UnixHttpClientTest, ReconnectsAfterTheServerClosedTheConnection) {
  server_.set_keep_alive_max_count(1);  // one request per connection, then the server closes
  server_.Get("/n", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("n", "text/plain");
  });
  StartServer();
  UnixHttpClient client(path_);
  for (int i = 0; i < 3; ++i) {
    auto res = client.Request("GET", "/n");
    ASSERT_TRUE(res.ok()) << "request " << i << ": " << res.status().message();
    EXPECT_EQ(res->body, "n");
  }
  EXPECT_EQ(connections_.load(), 3);
}

TEST_F(UnixHttpClientTest, PathIsEscapedSoNamesArriveAsTyped) {
  std::string seen;
  server_.Get(R"(/v1/vms/(.+))", [&seen](const httplib::Request& req, httplib::Response& res) {
    seen = req.matches[1];
    res.set_content("ok", "text/plain");
  });
  StartServer();
  UnixHttpClient client(path_);
  auto res = client.Request("GET", "/v1/vms/my vm;1,\xc3\xa9");
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(seen, "my vm;1,\xc3\xa9");
}

TEST(UnixHttpClientErrorTest, MissingSocketIsUnavailableAndNamesThePath) {
  std::string dir = MakeTempDir();
  const std::string path = dir + "/absent.sock";
  UnixHttpClient client(path);
  auto res = client.Request("GET", "/v1/host");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(res.status().message(), "cannot connect to " + path + ": No such file or directory");
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace ferry::cli
