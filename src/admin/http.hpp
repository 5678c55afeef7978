// The daemon's HTTP layer (oauth2-admin serve): libmicrohttpd underneath,
// plain values above, so that the JSON API (api_*.cpp) and the web pages
// (web.cpp) are functions from an HttpRequest to an HttpResponse.

#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "json.hpp"
#include "store.hpp"

namespace oauth2::admin {

constexpr size_t kMaxRequestBody = 64 * 1024;

struct HttpRequest {
  std::string method;   // "GET", "POST", ...
  std::string path;     // the raw path, without the query string
  std::string query;    // the raw query string, without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower
  std::string body;
  std::string remote;   // the peer's address, "unix" for a unix socket

  // the value of a header (name in lower case); nullopt if absent
  std::optional<std::string_view> header(std::string_view lname) const;
  // how many times the header was sent
  size_t header_count(std::string_view lname) const;
  // the value of a cookie of the Cookie header
  std::optional<std::string> cookie(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  HttpResponse& set(std::string name, std::string value);

  static HttpResponse json(int status, const json_t* body);
  // {"detail": "..."}: the one error shape of the JSON API (DRF's)
  static HttpResponse error(int status, std::string_view detail);
  static HttpResponse html(int status, std::string body);
  static HttpResponse redirect(std::string location);  // 303
};

// What every handler may use.  The store is shared by all the daemon's
// threads: use store.read() / store.write(), never read_cached().
struct ServeContext {
  Store* store = nullptr;
  std::string realm = kDefaultRealm;
  unsigned pbkdf2_iterations = 600000;
  bool open_registration = false;
  size_t page_size = 100;
};

using Handler = std::function<HttpResponse(ServeContext&, const HttpRequest&)>;

}  // namespace oauth2::admin
