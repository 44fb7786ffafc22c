#include "cli/api_client.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <string>
#include <vector>

#include "cli/test_http_server.h"

namespace ferry::cli {
namespace {

using nlohmann::json;

// ApiClient against a real httplib::Server on a UNIX socket, the way ferryd answers.
class ApiClientTest : public UnixSocketHttpServerTest {
 protected:
  static void Reply(httplib::Response& res, int status, const std::string& body) {
    res.status = status;
    res.set_content(body, "application/json");
  }
};

TEST_F(ApiClientTest, JsonRepliesAndErrorObjectsDecode) {
  server_.Post("/v1/vms", [](const httplib::Request& req, httplib::Response& res) {
    Reply(res, 200, json{{"created", json::parse(req.body)["name"]}}.dump());
  });
  server_.Delete("/v1/vms/ghost", [](const httplib::Request&, httplib::Response& res) {
    Reply(res, 404, R"({"error":{"code":"not_found","message":"no VM ghost"}})");
  });
  server_.Get("/v1/broken", [](const httplib::Request&, httplib::Response& res) {
    res.status = 500;
    res.set_content("oops", "text/plain");
  });
  server_.Get("/v1/garbled", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("not json", "text/plain");
  });
  server_.Get("/v1/log", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("line 1\nline 2\n", "text/plain");
  });
  server_.Get("/v1/vms/ghost/log", [](const httplib::Request&, httplib::Response& res) {
    Reply(res, 404, R"({"error":{"code":"not_found","message":"no VM ghost"}})");
  });
  StartServer();
  ApiClient api(path_);

  auto created = api.Post("/v1/vms", {{"name", "web-1"}});
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_EQ((*created)["created"], "web-1");

  auto missing = api.Delete("/v1/vms/ghost");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(missing.status().message(), "no VM ghost");

  auto broken = api.Get("/v1/broken");
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().code(), Status::Code::kInternal);
  EXPECT_EQ(broken.status().message(), "ferryd answered HTTP 500");

  auto garbled = api.Get("/v1/garbled");
  ASSERT_FALSE(garbled.ok());
  EXPECT_EQ(garbled.status().message(), "ferryd sent a reply that is not JSON");

  auto text = api.GetText("/v1/log");
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_EQ(*text, "line 1\nline 2\n");

  auto text_error = api.GetText("/v1/vms/ghost/log");
  ASSERT_FALSE(text_error.ok());
  EXPECT_EQ(text_error.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(text_error.status().message(), "no VM ghost");

  auto unrouted = api.GetText("/v1/nothing");  // 404 without an error object
  ASSERT_FALSE(unrouted.ok());
  EXPECT_EQ(unrouted.status().message(), "ferryd answered HTTP 404");
}

TEST_F(ApiClientTest, FollowPollsTheOperationUntilItEnds) {
  int polls = 0;
  server_.Get("/v1/operations/op-1", [&polls](const httplib::Request& req, httplib::Response& res) {
    EXPECT_EQ(req.get_param_value("wait_ms"), "500");
    json op = {{"id", "op-1"}, {"state", ++polls < 3 ? "running" : "succeeded"}};
    if (polls >= 3) op["result"] = {{"vm", "web-1"}};
    Reply(res, 200, json{{"operation", op}}.dump());
  });
  StartServer();
  ApiClient api(path_);
  std::vector<std::string> states;
  auto result = api.Follow({{"operation", {{"id", "op-1"}, {"state", "running"}}}},
                           [&states](const json& op) { states.push_back(op["state"]); });
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(*result, (json{{"vm", "web-1"}}));
  EXPECT_EQ(states, (std::vector<std::string>{"running", "running", "running", "succeeded"}));
}

TEST(ApiClientUnreachableTest, MissingSocketSaysWhatToDo) {
  const std::string path = "/tmp/ferry-api-client-test-no-such-dir/ferryd.sock";
  ApiClient api(path);
  auto res = api.Get("/v1/host");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(res.status().message(),
            "cannot reach ferryd: cannot connect to " + path +
                ": No such file or directory; start ferryd or point FERRY_SOCKET / --socket at "
                "its socket");
}

}  // namespace
}  // namespace ferry::cli
