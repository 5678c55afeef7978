// What the handlers of the JSON API share: strict JSON bodies, DRF's
// error shapes, DRF's page-number pagination, and the handlers themselves
// (api_users.cpp, api_apps.cpp, api_keys.cpp), which serve.cpp routes to.

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api_auth.hpp"
#include "http.hpp"
#include "json.hpp"

namespace oauth2::admin {

constexpr size_t kMaxJsonDepth = 32;  // docs/security.md 2.4

HttpResponse not_found();   // 404 {"detail": "Not found."}
HttpResponse no_content();  // 204, after a DELETE

// One view of the API as DRF's APIView describes itself: its name and
// description (SimpleMetadata's, for OPTIONS) and its Allow header, every
// method it answers, OPTIONS last as in DRF's allowed_methods.
struct ApiView {
  const char* name;
  const char* description;
  const char* allow;
};
// OPTIONS, once the caller passed the checks GET has (DRF's options()
// runs after initial()'s permission checks): 200 {"name", "description",
// "renders", "parses"} + Allow
HttpResponse options_response(const ApiView& view);
// 405 {"detail": "Method \"X\" not allowed."} + Allow
HttpResponse method_not_allowed(const HttpRequest& req, const ApiView& view);

// The body of req as a JSON object (R72, docs/security.md 2.4): Content-Type
// application/json (else 415), nesting at most kMaxJsonDepth, checked on
// the bytes before any parsing, no duplicate key, no NUL, UTF-8, nothing
// after the value, an object at the top (else 400 "JSON parse error -").
// nullptr with *error when it is not.
Json parse_json_object(const HttpRequest& req, HttpResponse* error);

// DRF's validation errors: 400 {"field": ["message", ...], ...}.
class FieldErrors {
 public:
  void add(std::string_view field, std::string message);
  bool has(std::string_view field) const;
  bool empty() const { return errors_.empty(); }
  HttpResponse response() const;

 private:
  std::vector<std::pair<std::string, std::vector<std::string>>> errors_;
};

// Reading members of a JSON object with DRF's messages.  kAbsent: not in
// the object; kBad: present but invalid (the error is added).
enum class Got { kAbsent, kOk, kBad };

// A string; trimmed of surrounding whitespace unless !trim, as DRF's
// CharField does (Python's str.strip(): U+00A0, U+3000 and the other
// Unicode spaces too).  A number, boolean, array, object: "Not a valid
// string."; null: "This field may not be null."
Got get_string(json_t* obj, const char* key, FieldErrors& errors, std::string* out,
               bool trim = true);
// true or false only (no "true", no 1): "Must be a valid boolean."
Got get_bool(json_t* obj, const char* key, FieldErrors& errors, bool* out);

// "Ensure this field has no more than N characters." when s is longer.
bool check_max_chars(std::string_view s, size_t max, const char* key, FieldErrors& errors);

// DRF's PageNumberPagination: ?page=N (1 when absent; "last" the last).
class Pager {
 public:
  Pager(const HttpRequest& req, size_t page_size);
  // false: ?page= is not a positive integer (404 "Invalid page.")
  bool valid() const { return valid_; }
  // the first item and the number of items of the page, given the total;
  // false if the page is beyond the last one
  bool window(size_t total, size_t* offset, size_t* limit);
  // {"count", "next", "previous", "results"} (steals results); next and
  // previous are absolute URLs from Host and X-Forwarded-Proto
  HttpResponse response(json_t* results) const;

 private:
  const HttpRequest& req_;
  size_t size_;
  size_t page_ = 1;
  bool last_ = false;
  bool valid_ = true;
  size_t total_ = 0;
};

HttpResponse invalid_page();  // 404 {"detail": "Invalid page."}

// Every request of `oauth2-admin serve` (serve.cpp): its realm, then the
// web pages or the API, with the caller authenticated.  What it throws
// the HTTP layer answers (503 for a StoreError, else 500).
HttpResponse route(ServeContext& shared, const HttpRequest& req);

// The API's handlers; serve.cpp has authenticated the caller.
// /api/users/ (id: nullopt) and /api/users/<id>/
HttpResponse users_api(ServeContext& ctx, const HttpRequest& req, const Caller& caller,
                       std::optional<uint64_t> id);
// /auth/me/
HttpResponse me_api(ServeContext& ctx, const HttpRequest& req, const Caller& caller);
// /api/applications/ (client_id: nullopt), /api/applications/<id>/ and
// /api/applications/<id>/rotate-secret/ (rotate)
HttpResponse apps_api(ServeContext& ctx, const HttpRequest& req, const Caller& caller,
                      const std::optional<std::string>& client_id, bool rotate);
// /api/applications/<id>/api-keys/ (key_id: nullopt) and
// /api/applications/<id>/api-keys/<key_id>/ (api_keys.cpp)
HttpResponse api_keys_api(ServeContext& ctx, const HttpRequest& req, const Caller& caller,
                          const std::string& client_id, const std::optional<std::string>& key_id);
// /api/users/<id>/consents/ (client_id: nullopt) and
// /api/users/<id>/consents/<client_id>/ (consents.cpp)
HttpResponse consents_api(ServeContext& ctx, const HttpRequest& req, const Caller& caller,
                          uint64_t user, const std::optional<std::string>& client_id);

}  // namespace oauth2::admin
