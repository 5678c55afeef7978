// /o/applications/: the pages of django-oauth-toolkit's application views
// (docs/compat.md, seeds 000 and 001), served by oauth2-admin serve.  See
// web.hpp; this file routes a request to its handler, the others are
// listed in web_internal.hpp.

#include "web.hpp"

#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "cli.hpp"
#include "codec.hpp"
#include "store.hpp"
#include "web_internal.hpp"

namespace oauth2::admin {
namespace web {
namespace {

enum class Route { kList, kLogin, kLogout, kRegister, kDetail, kUpdate, kDelete, kRotate, kNone };

struct Match {
  Route route = Route::kNone;
  std::string_view raw_id;  // the client id segment, still encoded
};

Match match(std::string_view path) {
  Match m;
  if (path.substr(0, kBase.size()) != kBase) return m;
  std::string_view rest = path.substr(kBase.size());
  if (rest.empty()) {
    m.route = Route::kList;
    return m;
  }
  if (rest.back() != '/') return m;
  rest.remove_suffix(1);
  if (rest == "login") m.route = Route::kLogin;
  if (rest == "logout") m.route = Route::kLogout;
  if (rest == "register") m.route = Route::kRegister;
  if (m.route != Route::kNone) return m;
  size_t slash = rest.find('/');
  m.raw_id = rest.substr(0, slash);
  if (m.raw_id.empty()) return m;
  if (slash == std::string_view::npos) {
    m.route = Route::kDetail;
    return m;
  }
  std::string_view action = rest.substr(slash + 1);
  if (action == "update") m.route = Route::kUpdate;
  if (action == "delete") m.route = Route::kDelete;
  if (action == "rotate-secret") m.route = Route::kRotate;
  return m;
}

const char* allowed_methods(Route r) {
  switch (r) {
    case Route::kList:
    case Route::kDetail: return "GET, HEAD";
    case Route::kLogout:
    case Route::kRotate: return "POST";
    default: return "GET, HEAD, POST";
  }
}

// The pages of one application (id decoded and valid); f is a POST's.
HttpResponse app_route(ServeContext& ctx, Route route, bool post, const std::string& id,
                       const Form& f, const Auth& auth) {
  switch (route) {
    case Route::kUpdate:
      if (post) return update_post(ctx, id, f, auth);
      break;
    case Route::kDelete:
      if (post) return delete_post(ctx, id, auth);
      break;
    case Route::kRotate: return rotate_post(ctx, id, auth);
    default: break;
  }
  auto c = load_app(ctx, id);
  if (!c) return not_found(&auth);
  if (route == Route::kUpdate) {
    return update_page(200, *c, form_of(*c), Errors{}, auth);
  }
  if (route == Route::kDelete) return delete_page(*c, auth);
  return detail_page(*c, auth);
}

HttpResponse route(ServeContext& ctx, const HttpRequest& req) {
  Match m = match(req.path);
  if (m.route == Route::kNone) return not_found(nullptr);

  const std::string& method = req.method;
  bool get = method == "GET" || method == "HEAD";
  bool post = method == "POST";
  std::string_view allow = allowed_methods(m.route);
  if (!(get && allow.find("GET") != std::string_view::npos) &&
      !(post && allow.find("POST") != std::string_view::npos)) {
    return method_not_allowed(allow);
  }

  if (m.route == Route::kLogin) {
    return get ? login_get(ctx, req) : login_post(ctx, req);
  }
  if (m.route == Route::kLogout) return logout_post(ctx, req);

  auto auth = authenticate(ctx, req);
  if (!auth) return login_redirect(req);

  Form f;
  if (post) {
    if (auto refused = read_post(req, f, *auth)) return std::move(*refused);
  }

  if (m.route == Route::kList) return list_get(ctx, *auth);
  if (m.route == Route::kRegister) {
    return get ? register_page(200, AppForm{}, Errors{}, *auth) : register_post(ctx, f, *auth);
  }

  auto id = percent_decode_segment(m.raw_id);
  if (!id || !valid_client_id(*id)) return not_found(&*auth);
  return app_route(ctx, m.route, post, *id, f, *auth);
}

// For the log: at most 200 bytes, each outside %x21-7E as '?'.
std::string printable(std::string_view s) {
  std::string out(s.substr(0, 200));
  for (char& ch : out) {
    if (ch < 0x21 || ch > 0x7E) ch = '?';
  }
  return out;
}

}  // namespace
}  // namespace web

HttpResponse web_handle(ServeContext& ctx, const HttpRequest& req) {
  try {
    return web::route(ctx, req);
  } catch (const StoreError& e) {
    // a retryable outage (the store full, a cluster without quorum), as
    // the API answers it (R77)
    log_line("", "web " + web::printable(req.method) + " " + web::printable(req.path) +
                     ": store: " + e.what());
    try {
      HttpResponse r = web::message(503, "Service unavailable",
                                    "The store is unavailable. Try again in a moment.", nullptr);
      r.set("Retry-After", "1");
      return r;
    } catch (...) {
    }
  } catch (const std::exception& e) {
    log_line(
        "", "web " + web::printable(req.method) + " " + web::printable(req.path) + ": " + e.what());
  } catch (...) {
    log_line("", "web: unexpected error");
  }
  try {
    return web::message(500, "Server error", "Something went wrong. Try again later.", nullptr);
  } catch (...) {
    HttpResponse r;
    r.status = 500;
    return r;
  }
}

}  // namespace oauth2::admin
