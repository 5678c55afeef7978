// include/oauth2.h: the C API the nginx shim calls.  Every function is
// noexcept and catches everything; results are copied into memory from the
// caller's allocator.

#include <lmdb.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "../../include/oauth2.h"
#include "codec.hpp"
#include "endpoints.hpp"
#include "settings.hpp"
#include "endpoint_util.hpp"
#include "store.hpp"
#include "throttle.hpp"

struct oauth2_store_s {
  std::string path;
  size_t mapsize = 0;
  std::unique_ptr<oauth2::Store> store;
  std::atomic<int> inflight{0};  // pending writes that hold store
  bool broken = false;           // MDB_PANIC seen: reopen when idle
};

struct oauth2_op_s {
  oauth2_store_t* owner;
  std::unique_ptr<oauth2::PendingWrite> write;
  bool slow;
  oauth2::Throttle throttle;  // the request's, for its failures
};

namespace {

void set_err(char* err, size_t errlen, const char* msg) {
  if (err && errlen) {
    std::strncpy(err, msg, errlen - 1);
    err[errlen - 1] = '\0';
  }
}

bool copy_out(const std::string& s, oauth2_alloc_pt alloc, void* ctx,
              unsigned char** data, size_t* len) {
  *len = s.size();
  *data = nullptr;
  if (s.empty()) return true;
  auto* p = static_cast<unsigned char*>(alloc(ctx, s.size()));
  if (!p) return false;
  std::memcpy(p, s.data(), s.size());
  *data = p;
  return true;
}

int to_c(const oauth2::Response& r, oauth2_alloc_pt alloc, void* ctx,
         oauth2_response_t* out) {
  out->status = r.status;
  out->basic_challenge = r.basic_challenge;
  out->bearer_challenge = r.bearer_challenge;
  out->auth_failed = r.auth_failed;
  out->retry_after = r.retry_after;
  out->store_error = r.store_rc ? mdb_strerror(r.store_rc) : nullptr;
  out->html = r.html;
  out->refused = r.refused;
  unsigned char* p;
  size_t n;
  if (!copy_out(r.resume, alloc, ctx, &p, &n)) return OAUTH2_ERROR;
  out->resume = oauth2_str_t{p, n};
  if (!r.resume.empty()) return OAUTH2_AGAIN;
  if (!copy_out(r.location, alloc, ctx, &p, &n)) return OAUTH2_ERROR;
  out->location = oauth2_str_t{p, n};
  for (size_t i = 0; i < OAUTH2_MAX_COOKIES; i++) {
    out->set_cookie[i] = oauth2_str_t{nullptr, 0};
    if (i >= r.cookies.size()) continue;
    if (!copy_out(r.cookies[i], alloc, ctx, &p, &n)) return OAUTH2_ERROR;
    out->set_cookie[i] = oauth2_str_t{p, n};
  }
  return copy_out(r.body, alloc, ctx, &out->body, &out->body_len)
             ? OAUTH2_OK
             : OAUTH2_ERROR;
}

void note_failure(oauth2_store_t* s, const oauth2::StoreError& e) {
  if (e.rc() == MDB_PANIC) s->broken = true;
}

oauth2::EndpointResult dispatch(oauth2::Store& store, int endpoint,
                                const oauth2_endpoint_req_t& req) {
  switch (endpoint) {
    case OAUTH2_ENDPOINT_REVOKE:
      return oauth2::revoke_endpoint(store, req);
    case OAUTH2_ENDPOINT_AUTHORIZE:
      return oauth2::authorize_endpoint(store, req);
    case OAUTH2_ENDPOINT_INTROSPECT:
      return oauth2::introspect_endpoint(store, req);
    case OAUTH2_ENDPOINT_METADATA:
      return oauth2::metadata_endpoint(store, req);
    case OAUTH2_ENDPOINT_REGISTER:
      return oauth2::register_endpoint(store, req);
    case OAUTH2_ENDPOINT_LOGIN:
      return oauth2::login_endpoint(store, req);
    case OAUTH2_ENDPOINT_HANDSHAKE:
      return oauth2::handshake_endpoint(store, req);
    case OAUTH2_ENDPOINT_JWT_TOKEN:
      return oauth2::jwt_token_endpoint(store, req);
    case OAUTH2_ENDPOINT_JWT_REFRESH:
      return oauth2::jwt_refresh_endpoint(store, req);
    default:
      return oauth2::token_endpoint(store, req);
  }
}

}  // namespace

namespace {

// A configuration call: OAUTH2_OK, or OAUTH2_ERROR with the exception's
// message in err (nginx -t shows it).
template <typename F>
int configure(char* err, size_t errlen, F&& f) noexcept {
  try {
    f();
    return OAUTH2_OK;
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "out of memory");
  }
  return OAUTH2_ERROR;
}

}  // namespace

extern "C" {

int oauth2_store_prepare(const char* path, size_t mapsize, long uid, long gid,
                         char* err, size_t errlen) noexcept {
  try {
    oauth2::prepare_store(path, mapsize, uid, gid);
    return OAUTH2_OK;
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return OAUTH2_ERROR;
}

oauth2_store_t* oauth2_store_create(const char* path, size_t mapsize) noexcept {
  try {
    auto* s = new oauth2_store_t;
    s->path = path;
    s->mapsize = mapsize;
    return s;
  } catch (...) {
    return nullptr;
  }
}

void oauth2_store_destroy(oauth2_store_t* store) noexcept { delete store; }

int oauth2_store_open(oauth2_store_t* s, char* err, size_t errlen) noexcept {
  try {
    if (s->store && !s->broken) return OAUTH2_OK;
    if (s->inflight.load() != 0) {
      set_err(err, errlen, "writes in flight");
      return OAUTH2_ERROR;
    }
    s->store.reset();  // close before opening again: never twice at once
    s->store = std::make_unique<oauth2::Store>(s->path, s->mapsize);
    s->broken = false;
    return OAUTH2_OK;
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return OAUTH2_ERROR;
}

int oauth2_store_is_open(oauth2_store_t* s) noexcept {
  return s->store && !s->broken;
}

int oauth2_store_reader_check(oauth2_store_t* s, int* dead) noexcept {
  *dead = 0;
  if (!oauth2_store_is_open(s)) return OAUTH2_ERROR;
  try {
    *dead = s->store->reader_check();
    return OAUTH2_OK;
  } catch (const oauth2::StoreError& e) {
    note_failure(s, e);
  } catch (...) {
  }
  return OAUTH2_ERROR;
}

int oauth2_endpoint_begin(oauth2_store_t* s, int endpoint,
                          const oauth2_endpoint_req_t* req, oauth2_op_t** op,
                          oauth2_alloc_pt alloc, void* ctx,
                          oauth2_response_t* resp) noexcept {
  *op = nullptr;
  oauth2::Response r;
  try {
    const oauth2::Throttle throttle(req->throttle, oauth2::detail::sv(req->address));
    if (endpoint == OAUTH2_ENDPOINT_JWKS || endpoint == OAUTH2_ENDPOINT_STATUS) {
      // answered from the configuration: the store is not needed, and
      // may never have opened
      r = std::move((endpoint == OAUTH2_ENDPOINT_JWKS
                         ? oauth2::jwks_endpoint(*req)
                         : oauth2::status_endpoint(*req)).response);
    } else if (unsigned wait = throttle.address_wait()) {
      // too many failed authentications from this address (R17)
      r = oauth2::refusal_response(endpoint, OAUTH2_REFUSED_LOCKED_OUT, wait);
      r.refused = "too many failed authentications from the address";
    } else if (!oauth2_store_is_open(s)) {
      r = oauth2::failure_response(endpoint, 503);
    } else {
      oauth2::EndpointResult e = dispatch(*s->store, endpoint, *req);
      if (e.pending) {
        auto* o = new oauth2_op_t{s, std::move(e.pending), e.slow, throttle};
        s->inflight++;
        *op = o;
        return OAUTH2_PENDING;
      }
      r = std::move(e.response);
      if (r.auth_failed) throttle.address_failed();
    }
  } catch (const oauth2::StoreError& e) {
    note_failure(s, e);
    try {
      r = oauth2::failure_response(endpoint, 503);
    } catch (...) {
      return OAUTH2_ERROR;
    }
    r.store_rc = e.rc();
  } catch (...) {
    try {
      r = oauth2::failure_response(endpoint, 500);
    } catch (...) {
      return OAUTH2_ERROR;
    }
  }
  try {
    return to_c(r, alloc, ctx, resp);
  } catch (...) {
    return OAUTH2_ERROR;
  }
}

int oauth2_refusal(int endpoint, int why, unsigned retry_after,
                   oauth2_alloc_pt alloc, void* ctx,
                   oauth2_response_t* resp) noexcept {
  try {
    return to_c(oauth2::refusal_response(endpoint, why, retry_after), alloc,
                ctx, resp);
  } catch (...) {
    return OAUTH2_ERROR;
  }
}

int oauth2_rate_by_caller(int endpoint) noexcept {
  // these know their caller (a client, an API key) once it authenticated
  // and call take() themselves; the others count by address
  return endpoint == OAUTH2_ENDPOINT_TOKEN || endpoint == OAUTH2_ENDPOINT_REVOKE ||
         endpoint == OAUTH2_ENDPOINT_INTROSPECT ||
         endpoint == OAUTH2_ENDPOINT_HANDSHAKE;
}

// ------------------------------------------------------------- settings

oauth2_settings_t* oauth2_settings_create(void) noexcept {
  try {
    return new oauth2_settings_t();
  } catch (...) {
    return nullptr;
  }
}

void oauth2_settings_destroy(oauth2_settings_t* s) noexcept { delete s; }

int oauth2_settings_add_jwt_key(oauth2_settings_t* s, const char* path,
                                int hmac, char* err, size_t errlen) noexcept {
  return configure(err, errlen, [&] {
    s->s.jwt_keys.add(oauth2::JwtKey::load_file(path, hmac != 0));
  });
}

int oauth2_settings_set_handshake_key(oauth2_settings_t* s, const char* path,
                                      char* err, size_t errlen) noexcept {
  return configure(err, errlen, [&] {
    // a key that `oauth2-admin handshake-key extract` moved out of the
    // store still verifies the tokens it signed there, under their kid
    std::shared_ptr<oauth2::JwtKey> legacy;
    s->s.handshake_key = oauth2::JwtKey::load_hmac_file(
        path, oauth2::kLegacyHandshakeKid, &legacy);
    s->s.handshake_keys.add(s->s.handshake_key);
    s->s.handshake_keys.add(legacy);
  });
}

int oauth2_settings_add_solution(oauth2_settings_t* s, const oauth2_str_t* args,
                                 size_t nargs, char* err, size_t errlen) noexcept {
  return configure(err, errlen, [&] {
    auto view = [](const oauth2_str_t& a) {
      return std::string(reinterpret_cast<const char*>(a.data), a.len);
    };
    if (nargs < 2) {
      throw std::runtime_error(
          "a solution needs a name and at least one role=database");
    }
    oauth2::Solution sol;
    sol.name = view(args[0]);
    if (sol.name.empty() || sol.name.size() > 150 || oauth2::has_control(sol.name) ||
        !oauth2::valid_utf8(sol.name) || s->s.solution(sol.name)) {
      throw std::runtime_error("invalid or duplicate solution name");
    }
    for (size_t i = 1; i < nargs; i++) {
      std::string a = view(args[i]);
      size_t eq = a.find('=');
      if (eq == 0 || eq == std::string::npos || eq + 1 == a.size() ||
          oauth2::has_control(a) || !oauth2::valid_utf8(a)) {
        throw std::runtime_error("\"" + a + "\" is not role=database");
      }
      std::string role = a.substr(0, eq);
      for (const auto& d : sol.databases) {
        if (d.first == role) {
          throw std::runtime_error("role \"" + role + "\" is given twice");
        }
      }
      sol.databases.emplace_back(role, a.substr(eq + 1));
    }
    s->s.solutions.push_back(std::move(sol));
  });
}

int oauth2_settings_set_status(oauth2_settings_t* s, oauth2_str_t service,
                               const char* token_path, char* err,
                               size_t errlen) noexcept {
  std::string token;
  if (!oauth2::read_secret_file(token_path, &token, err, errlen)) {
    return OAUTH2_ERROR;
  }
  int rc = configure(err, errlen, [&] {
    if (token.size() < 16) {
      throw std::runtime_error(
          "the service token must have at least 16 characters");
    }
    s->s.status_token_hash = oauth2::sha256(token);
    s->s.has_status_token = true;
    s->s.service.assign(reinterpret_cast<const char*>(service.data), service.len);
  });
  oauth2::wipe(token);
  return rc;
}

int oauth2_settings_set_password_policy(oauth2_settings_t* s, oauth2_str_t spec,
                                        char* err, size_t errlen) noexcept {
  return configure(err, errlen, [&] {
    std::string why;
    auto p = oauth2::PasswordPolicy::parse(oauth2::detail::sv(spec), &why);
    if (!p) throw std::runtime_error(why);
    s->s.password_policy = *p;
  });
}

int oauth2_settings_can_sign(const oauth2_settings_t* s) noexcept {
  return s && s->s.jwt_keys.signer() != nullptr;
}

void oauth2_op_run(oauth2_op_t* op) noexcept { op->write->run(); }

int oauth2_op_slow(const oauth2_op_t* op) noexcept { return op->slow ? 1 : 0; }

int oauth2_op_finish(oauth2_op_t* op, oauth2_alloc_pt alloc, void* ctx,
                     oauth2_response_t* resp) noexcept {
  int rc = OAUTH2_ERROR;
  try {
    oauth2::Response r = op->write->finish();
    if (r.auth_failed) op->throttle.address_failed();
    rc = to_c(r, alloc, ctx, resp);
    oauth2::wipe(r.body);
  } catch (...) {
    rc = OAUTH2_ERROR;
  }
  oauth2_op_free(op);
  return rc;
}

void oauth2_op_free(oauth2_op_t* op) noexcept {
  if (!op) return;
  op->owner->inflight--;
  delete op;
}

int oauth2_validate(oauth2_store_t* s, const oauth2_validate_req_t* req,
                    oauth2_alloc_pt alloc, void* ctx,
                    oauth2_validate_res_t* res) noexcept {
  std::memset(res, 0, sizeof(*res));
  res->result = OAUTH2_UNAVAILABLE;
  if (!oauth2_store_is_open(s)) return OAUTH2_OK;
  try {
    oauth2::Validation v = oauth2::validate(*s->store, *req);
    res->result = v.result;
    res->expires = v.expires;
    unsigned char* p;
    size_t n;
    if (!copy_out(v.client_id, alloc, ctx, &p, &n)) return OAUTH2_ERROR;
    res->client_id = oauth2_str_t{p, n};
    if (!copy_out(v.scope, alloc, ctx, &p, &n)) return OAUTH2_ERROR;
    res->scope = oauth2_str_t{p, n};
    if (!copy_out(v.user, alloc, ctx, &p, &n)) return OAUTH2_ERROR;
    res->user = oauth2_str_t{p, n};
    return OAUTH2_OK;
  } catch (const oauth2::StoreError& e) {
    note_failure(s, e);
    res->result = OAUTH2_UNAVAILABLE;
    return OAUTH2_OK;
  } catch (...) {
    res->result = OAUTH2_UNAVAILABLE;
    return OAUTH2_OK;
  }
}

int oauth2_scope_valid(const unsigned char* s, size_t len) noexcept {
  try {
    return oauth2::parse_scope(
        std::string_view(reinterpret_cast<const char*>(s), len), nullptr);
  } catch (...) {
    return 0;
  }
}

}  // extern "C"
