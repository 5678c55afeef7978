// include/oauth2.h: the C API the nginx shim calls.  Every function is
// noexcept and catches everything; results are copied into memory from the
// caller's allocator, and the reason of a failure reaches the shim's log.

#include <lmdb.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "../../include/oauth2.h"
#include "audience.hpp"
#include "cluster.hpp"
#include "codec.hpp"
#include "committer.hpp"
#include "endpoint_table.hpp"
#include "expiry.hpp"
#include "endpoint_util.hpp"
#include "location.hpp"
#include "request.hpp"
#include "store.hpp"

struct oauth2_store_s {
  std::string path;
  size_t mapsize = 0;
  std::unique_ptr<oauth2::Store> store;
  std::atomic<int> inflight{0};               // pending writes that hold store
  bool broken = false;                        // MDB_PANIC seen: reopen when idle
  oauth2_write_metrics_t* metrics = nullptr;  // shared, for every Store
  std::shared_ptr<oauth2::Cluster> cluster;   // oauth2_cluster, or none
};

struct oauth2_op_s {
  oauth2_store_t* owner;
  std::unique_ptr<oauth2::PendingWrite> write;
  bool slow;
  oauth2::Throttle throttle;  // the request's, for its failures
  oauth2_rate_state_t rate;   // what its rate limit counted
};

namespace {

using oauth2::detail::sv;

void set_err(char* err, size_t errlen, const char* msg) {
  if (err && errlen) {
    std::strncpy(err, msg, errlen - 1);
    err[errlen - 1] = '\0';
  }
}

bool copy_out(std::string_view s, oauth2_alloc_pt alloc, void* ctx, oauth2_str_t* out) {
  out->len = s.size();
  out->data = nullptr;
  if (s.empty()) return true;
  auto* p = static_cast<unsigned char*>(alloc(ctx, s.size()));
  if (!p) return false;
  std::memcpy(p, s.data(), s.size());
  out->data = p;
  return true;
}

// Response -> oauth2_response_t; OAUTH2_AGAIN when it asks for one more
// pass of the request
int to_c(const oauth2::Response& r, const oauth2_rate_state_t& rate, oauth2_alloc_pt alloc,
         void* ctx, oauth2_response_t* out) {
  out->status = r.status;
  out->basic_challenge = r.basic_challenge;
  out->bearer_challenge = r.bearer_challenge;
  out->auth_failed = r.auth_failed;
  out->retry_after = r.retry_after;
  out->html = r.html;
  out->refused = r.refused;
  out->refused_info = r.refused_info;
  out->limited = r.limited;
  out->unavailable = r.status == 503 || r.unavailable
                         ? oauth2::StoreError::unavailable_reason(r.store_rc)
                         : OAUTH2_UNAVAILABLE_NONE;
  out->rate = rate;
  std::string reason = r.reason;
  if (reason.empty() && r.store_rc) reason = mdb_strerror(r.store_rc);
  if (!copy_out(reason, alloc, ctx, &out->reason)) return OAUTH2_ERROR;
  if (!copy_out(r.resume, alloc, ctx, &out->resume)) return OAUTH2_ERROR;
  if (!r.resume.empty()) return OAUTH2_AGAIN;
  if (!copy_out(r.location, alloc, ctx, &out->location) ||
      !copy_out(r.grant, alloc, ctx, &out->grant) ||
      !copy_out(r.issued_client, alloc, ctx, &out->issued_client) ||
      !copy_out(r.token_id, alloc, ctx, &out->token_id) ||
      !copy_out(r.www_authenticate, alloc, ctx, &out->www_authenticate) ||
      !copy_out(r.dpop_nonce, alloc, ctx, &out->dpop_nonce)) {
    return OAUTH2_ERROR;
  }
  for (size_t i = 0; i < OAUTH2_MAX_COOKIES; i++) {
    out->set_cookie[i] = oauth2_str_t{nullptr, 0};
    if (i >= r.cookies.size()) continue;
    if (!copy_out(r.cookies[i], alloc, ctx, &out->set_cookie[i])) return OAUTH2_ERROR;
  }
  oauth2_str_t body;
  if (!copy_out(r.body, alloc, ctx, &body)) return OAUTH2_ERROR;
  out->body = const_cast<unsigned char*>(body.data);
  out->body_len = body.len;
  return OAUTH2_OK;
}

void note_failure(oauth2_store_t* s, const oauth2::StoreError& e) {
  if (s && e.rc() == MDB_PANIC) s->broken = true;
}

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

oauth2::Store* open_store(oauth2_store_t* s) {
  return s && s->store && !s->broken ? s->store.get() : nullptr;
}

// The endpoint's answer to a failure: 503 with the store's reason, or 500
// with the exception's.
oauth2::Response failure(int endpoint, int status, const char* why, int rc) {
  oauth2::Response r = oauth2::failure_response(endpoint, status);
  r.reason = why;
  r.store_rc = rc;
  return r;
}

// A validation that could not be answered: 503, and why for the log
// (best effort: out of memory leaves the reason empty) and the metrics
// (OAUTH2_UNAVAILABLE_*).
void unavailable_because(const char* why, unsigned reason, oauth2_alloc_pt alloc, void* ctx,
                         oauth2_validate_res_t* res) noexcept {
  std::memset(res, 0, sizeof(*res));
  res->result = OAUTH2_UNAVAILABLE;
  res->why = OAUTH2_WHY_STORE_UNAVAILABLE;
  res->unavailable = reason;
  res->status = 503;
  try {
    copy_out(why, alloc, ctx, &res->reason);
  } catch (...) {
  }
}

oauth2::EtcdConfig cluster_config(const char* etcd, const char* prefix,
                                  const oauth2_cluster_tls_t* tls) {
  oauth2::EtcdConfig config;
  config.endpoints = oauth2::parse_etcd_endpoints(etcd);
  config.prefix = prefix;
  if (tls) {
    config.cacert = tls->cacert ? tls->cacert : "";
    config.cert = tls->cert ? tls->cert : "";
    config.key = tls->key ? tls->key : "";
  }
  return config;
}

}  // namespace

extern "C" {

// ----------------------------------------------------------------- store

int oauth2_store_prepare(const char* path, size_t mapsize, long uid, long gid, char* err,
                         size_t errlen) noexcept {
  return configure(err, errlen, [&] { oauth2::prepare_store(path, mapsize, uid, gid); });
}

const char* oauth2_why_name(int why) noexcept {
  static const char* const kNames[OAUTH2_WHY_COUNT] = {
      "ok",           "missing",           "malformed",      "unknown",
      "expired",      "revoked",           "disabled",       "insufficient_scope",
      "rate_limited", "store_unavailable", "wrong_audience", "dpop_nonce"};
  return why >= 0 && why < OAUTH2_WHY_COUNT ? kNames[why] : "";
}

int oauth2_grant_index(const oauth2_str_t* grant) noexcept {
  return oauth2::grant_index(sv(*grant));
}

const char* oauth2_grant_label(int index) noexcept {
  return oauth2::grant_label(index);
}

const char* oauth2_unavailable_name(int reason) noexcept {
  static const char* const kNames[OAUTH2_UNAVAILABLE_COUNT] = {
      "", "store", "mirror", "cluster", "hash_queue", "thread_queue"};
  return reason >= 0 && reason < OAUTH2_UNAVAILABLE_COUNT ? kNames[reason] : "";
}

int oauth2_valid_realm(const oauth2_str_t* name) noexcept {
  return oauth2::valid_realm(sv(*name)) ? 1 : 0;
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

void oauth2_store_destroy(oauth2_store_t* store) noexcept {
  delete store;
}

int oauth2_store_open(oauth2_store_t* s, char* err, size_t errlen) noexcept {
  if (s->store && !s->broken) return OAUTH2_OK;
  if (s->inflight.load() != 0) {
    set_err(err, errlen, "writes in flight");
    return OAUTH2_ERROR;
  }
  return configure(err, errlen, [&] {
    s->store.reset();  // close before opening again: never twice at once
    auto store = std::make_unique<oauth2::Store>(s->path, s->mapsize);
    // Checked here, in the workers, and not by nginx -t, which never
    // touches the store (R76): a mirror of another prefix is refused and
    // the worker answers 503, logs why and tries again, as for any store
    // it cannot open.
    if (s->cluster) oauth2::check_mirror_of(*store, s->cluster->etcd().config().prefix);
    s->store = std::move(store);
    s->store->committer().share_metrics(s->metrics);
    if (s->cluster) s->store->use_cluster(s->cluster);
    s->broken = false;
  });
}

int oauth2_store_cluster(oauth2_store_t* s, const char* etcd, const char* prefix,
                         const oauth2_cluster_tls_t* tls, int64_t max_staleness_ms, char* err,
                         size_t errlen) noexcept {
  return configure(err, errlen, [&] {
    oauth2::EtcdConfig config = cluster_config(etcd, prefix, tls);
    s->cluster = std::make_shared<oauth2::Cluster>(config, max_staleness_ms);
    if (s->store) s->store->use_cluster(s->cluster);
  });
}

int oauth2_cluster_check(const char* etcd, const char* prefix, const oauth2_cluster_tls_t* tls,
                         char* err, size_t errlen) noexcept {
  return configure(err, errlen, [&] {
    oauth2::EtcdConfig config = cluster_config(etcd, prefix, tls);
    oauth2::check_etcd_prefix(prefix);
    oauth2::check_etcd_tls(config, {"etcd=", "cacert=", "cert=", "key="});
  });
}

int oauth2_store_is_open(oauth2_store_t* s) noexcept {
  return open_store(s) != nullptr;
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

// ---------------------------------------------------------------- expiry

int oauth2_expiry_round(oauth2_store_t* s, const char* owner, int64_t now, unsigned lease_ttl,
                        unsigned batch, unsigned* held, unsigned* removed, unsigned* more,
                        char* err, size_t errlen) noexcept {
  *held = 0;
  *removed = 0;
  *more = 0;
  oauth2::Store* store = open_store(s);
  if (!store) {
    set_err(err, errlen, "the store is not open");
    return OAUTH2_ERROR;
  }
  s->inflight++;
  int rc = configure(err, errlen, [&] {
    oauth2::ExpiryRound r = oauth2::expiry_round(*store, owner, now, lease_ttl, batch);
    *held = r.held ? 1 : 0;
    *removed = static_cast<unsigned>(r.removed);
    *more = r.more ? 1 : 0;
  });
  s->inflight--;
  return rc;
}

double oauth2_commit_bound(unsigned bucket) noexcept {
  return oauth2::commit_bound(bucket);
}

unsigned oauth2_batch_bound(unsigned bucket) noexcept {
  return oauth2::batch_bound(bucket);
}

void oauth2_store_share_metrics(oauth2_store_t* s, oauth2_write_metrics_t* shared) noexcept {
  s->metrics = shared;
  if (s->store) s->store->committer().share_metrics(shared);
}

void oauth2_store_stats(oauth2_store_t* s, oauth2_store_stats_t* st) noexcept {
  *st = oauth2_store_stats_t{};
  if (!s) return;
  // What the configuration says, for a store this worker could not open
  // (a failed disk, a mirror of another prefix): the size it is to have,
  // and a mirror never known fresh (+Inf), so that an alert on either
  // fires rather than reads a map of 0 bytes and no mirror at all.
  st->map_size = s->mapsize;
  if (s->cluster) {
    st->cluster = 1;
    st->mirror_age_ms = -1;
  }
  oauth2::Store* store = open_store(s);
  if (!store) return;
  oauth2::Committer::Stats c = store->committer().stats();
  st->batches = c.batches;
  st->changes = c.changes;
  st->conflicts = c.conflicts;
  try {
    oauth2::Store::Usage u = store->usage();
    st->map_size = u.map_size;
    st->used = u.used;
    if (store->cluster()) {
      st->cluster = 1;
      st->mirror_revision = store->mirror_revision();
      const int64_t fresh = store->mirror_fresh_at();
      // the age mirror_staleness judges (a step of the clock back
      // neither hides it nor makes it negative)
      st->mirror_age_ms =
          fresh ? store->cluster()->mirror_age(fresh, oauth2::now_ms(), oauth2::monotonic_ms())
                : -1;
    }
  } catch (...) {
    // the counts above stand; the usage stays 0
  }
}

void oauth2_expiry_release(oauth2_store_t* s, const char* owner) noexcept {
  oauth2::Store* store = open_store(s);
  if (!store) return;
  try {
    oauth2::expiry_release(*store, owner);
  } catch (...) {
    // the lease lapses by itself
  }
}

// ---------------------------------------------------------- configuration

oauth2_conf_t* oauth2_conf_create(void) noexcept {
  try {
    return new oauth2_conf_t();
  } catch (...) {
    return nullptr;
  }
}

void oauth2_conf_destroy(oauth2_conf_t* conf) noexcept {
  delete conf;
}

int oauth2_conf_device_page_missing(const oauth2_conf_t* conf, oauth2_str_t* realm) noexcept {
  const std::string* r =
      conf->c.realm_without(OAUTH2_ENDPOINT_DEVICE_AUTHORIZATION, OAUTH2_ENDPOINT_DEVICE);
  if (!r) return 0;
  realm->data = reinterpret_cast<const unsigned char*>(r->data());
  realm->len = r->size();
  return 1;
}

int oauth2_conf_jwks_missing(const oauth2_conf_t* conf, oauth2_str_t* realm) noexcept {
  const std::string* r = conf->c.id_tokens_without_jwks();
  if (!r) return 0;
  realm->data = reinterpret_cast<const unsigned char*>(r->data());
  realm->len = r->size();
  return 1;
}

oauth2_location_t* oauth2_location_create(oauth2_conf_t* conf, const oauth2_location_conf_t* lc,
                                          char* err, size_t errlen) noexcept {
  oauth2_location_t* loc = nullptr;
  configure(err, errlen, [&] {
    auto l = std::make_unique<oauth2_location_t>();
    l->l = oauth2::make_location(conf->c, *lc);
    loc = l.release();
  });
  return loc;
}

void oauth2_location_destroy(oauth2_location_t* loc) noexcept {
  delete loc;
}

oauth2_str_t oauth2_location_header(const oauth2_location_t* loc) noexcept {
  const std::string& h = loc->l->status_header;
  return oauth2_str_t{reinterpret_cast<const unsigned char*>(h.data()), h.size()};
}

int oauth2_check_password_policy(oauth2_str_t spec, char* err, size_t errlen) noexcept {
  return configure(err, errlen, [&] {
    std::string why;
    if (!oauth2::PasswordPolicy::parse(sv(spec), &why)) throw std::runtime_error(why);
  });
}

int oauth2_scope_valid(const unsigned char* s, size_t len) noexcept {
  try {
    return oauth2::parse_scope(std::string_view(reinterpret_cast<const char*>(s), len), nullptr);
  } catch (...) {
    return 0;
  }
}

int oauth2_resource_valid(const unsigned char* s, size_t len) noexcept {
  try {
    return oauth2::valid_resource(std::string_view(reinterpret_cast<const char*>(s), len));
  } catch (...) {
    return 0;
  }
}

// ------------------------------------------------------------- endpoints

int oauth2_endpoint_begin(oauth2_store_t* s, const oauth2_location_t* l, const oauth2_request_t* c,
                          oauth2_op_t** op, oauth2_alloc_pt alloc, void* ctx,
                          oauth2_response_t* resp) noexcept {
  *op = nullptr;
  const oauth2::Location& loc = *l->l;
  oauth2::Response r;
  oauth2_rate_state_t rate{};
  try {
    oauth2::Request req(*c, loc);
    oauth2::EndpointResult e = oauth2::run_endpoint(open_store(s), req);
    rate = req.rate.state();
    if (e.pending) {
      *op = new oauth2_op_t{s, std::move(e.pending), e.slow, req.throttle(), rate};
      s->inflight++;
      return OAUTH2_PENDING;
    }
    r = std::move(e.response);
  } catch (const oauth2::StoreError& e) {
    note_failure(s, e);
    try {
      r = failure(loc.endpoint, 503, e.what(), e.rc());
    } catch (...) {
      return OAUTH2_ERROR;
    }
  } catch (const std::exception& e) {
    try {
      r = failure(loc.endpoint, 500, e.what(), 0);
    } catch (...) {
      return OAUTH2_ERROR;
    }
  } catch (...) {
    return OAUTH2_ERROR;
  }
  try {
    return to_c(r, rate, alloc, ctx, resp);
  } catch (...) {
    return OAUTH2_ERROR;
  }
}

int oauth2_refusal(const oauth2_location_t* l, int why, unsigned retry_after, oauth2_alloc_pt alloc,
                   void* ctx, oauth2_response_t* resp) noexcept {
  try {
    const int endpoint = l->l->endpoint;
    oauth2::Response r = why == OAUTH2_REFUSED_BUSY ? oauth2::busy_response(endpoint, retry_after)
                         : why == OAUTH2_REFUSED_FAILED ? oauth2::failure_response(endpoint, 500)
                                                        : oauth2::too_large_response(endpoint);
    const int rc = to_c(r, oauth2_rate_state_t{}, alloc, ctx, resp);
    resp->unavailable = OAUTH2_UNAVAILABLE_NONE;  // the shim's 503: it names its queue
    return rc;
  } catch (...) {
    return OAUTH2_ERROR;
  }
}

void oauth2_op_run(oauth2_op_t* op) noexcept {
  op->write->run();
}

int oauth2_op_slow(const oauth2_op_t* op) noexcept {
  return op->slow ? 1 : 0;
}

int oauth2_op_finish(oauth2_op_t* op, oauth2_alloc_pt alloc, void* ctx,
                     oauth2_response_t* resp) noexcept {
  int rc = OAUTH2_ERROR;
  try {
    oauth2::Response r = op->write->finish();
    if (r.auth_failed) op->throttle.address_failed();
    rc = to_c(r, op->rate, alloc, ctx, resp);
    oauth2::wipe(r.body);
  } catch (...) {
    rc = OAUTH2_ERROR;
  }
  oauth2_op_free(op);
  return rc;
}

int oauth2_op_prepared(const oauth2_op_t* op) noexcept {
  return op->write->prepared() ? 1 : 0;
}

void oauth2_ops_commit(oauth2_store_t* s, oauth2_ops_take_pt take, void* ctx) noexcept {
  oauth2_op_t** ops = nullptr;
  size_t n = 0;
  bool taken = false;
  try {
    auto out = s->store->committer().commit_prepared([&] {
      n = take(ctx, &ops);
      taken = true;
      std::vector<const oauth2::Change*> changes(n);
      for (size_t i = 0; i < n; i++) changes[i] = ops[i]->write->prepared();
      return changes;
    });
    for (size_t i = 0; i < n; i++) ops[i]->write->committed(out[i].applied, out[i].error);
  } catch (...) {
    // no memory for the batch: each alone, as oauth2_op_run would
    if (!taken) n = take(ctx, &ops);
    for (size_t i = 0; i < n; i++) ops[i]->write->run();
  }
}

void oauth2_op_free(oauth2_op_t* op) noexcept {
  if (!op) return;
  op->owner->inflight--;
  delete op;
}

// ------------------------------------------------------------ validation

namespace {

// oauth2_rate_limit at an auth_oauth2 location: per client (a public
// one's per client and address), whichever of its tokens it shows
void rate_limit_bearer(oauth2::Store& store, const oauth2::Location& loc,
                       const oauth2::BearerRequest& b, const oauth2::Validation& v,
                       oauth2_validate_res_t* res) {
  oauth2::RateLimit rate(loc, b.counters, "");
  if (rate.on()) {
    oauth2::Txn txn = store.read();
    res->retry_after =
        rate.take(oauth2::rate_key_of_bearer(txn, loc.realm, v.client_id, v.user_id, b));
  }
  res->rate = rate.state();
  if (res->retry_after) {
    res->result = OAUTH2_RATE_LIMITED;
    res->why = OAUTH2_WHY_RATE_LIMITED;
  }
}

}  // namespace

int oauth2_validate(oauth2_store_t* s, const oauth2_location_t* l, const oauth2_validate_req_t* req,
                    oauth2_alloc_pt alloc, void* ctx, oauth2_validate_res_t* res) noexcept {
  std::memset(res, 0, sizeof(*res));
  const oauth2::Location& loc = *l->l;
  try {
    oauth2::BearerRequest b;
    b.has_authorization = req->has_authorization != 0;
    b.authorization = sv(req->authorization);
    b.api_key_count = req->api_key_count;
    b.api_key = sv(req->api_key);
    b.now = req->now;
    b.method = sv(req->method);
    b.path = sv(req->path);
    b.dpop_count = req->dpop_count;
    b.dpop = sv(req->dpop);
    b.counters = req->counters;
    b.dpop_recorded = req->dpop_recorded != 0;
    b.rate_counted = req->rate_counted != 0;
    b.address = sv(req->address);
    oauth2::Validation v;
    oauth2::Store* store = open_store(s);
    if (store) {
      if (std::string why = oauth2::mirror_staleness(*store); !why.empty()) {
        unavailable_because(why.c_str(), OAUTH2_UNAVAILABLE_MIRROR, alloc, ctx, res);
        res->retry_after = 1;
        return OAUTH2_OK;
      }
    }
    if (store) {
      v = oauth2::validate(*store, loc, b);
    } else {
      unavailable_because("the store is not open in this worker", OAUTH2_UNAVAILABLE_STORE, alloc,
                          ctx, res);
      return OAUTH2_OK;
    }
    res->result = v.result;
    res->why = v.why;
    res->dpop_recorded = v.dpop_recorded;
    res->cached = v.cached;
    res->expires = v.expires;
    res->rate = v.rate;
    res->retry_after = v.retry_after;
    if (v.result == OAUTH2_VALID && !req->rate_counted && !v.rate.set) {
      rate_limit_bearer(*store, loc, b, v, res);
    }
    if (res->result == OAUTH2_UNAVAILABLE) {
      res->status = 503;
    } else if (res->result == OAUTH2_RATE_LIMITED) {
      res->status = 429;
    } else if (res->result != OAUTH2_VALID) {
      std::string h = oauth2::bearer_challenge(loc, res->result, &res->status, &res->error, &v);
      if (!copy_out(h, alloc, ctx, &res->challenge) ||
          !copy_out(v.dpop_nonce, alloc, ctx, &res->dpop_nonce)) {
        return OAUTH2_ERROR;
      }
    }
    if (!copy_out(v.client_id, alloc, ctx, &res->client_id) ||
        !copy_out(v.scope, alloc, ctx, &res->scope) || !copy_out(v.user, alloc, ctx, &res->user) ||
        !copy_out(v.token_id, alloc, ctx, &res->token_id)) {
      return OAUTH2_ERROR;
    }
    return OAUTH2_OK;
  } catch (const oauth2::StoreError& e) {
    note_failure(s, e);
    unavailable_because(e.what(), oauth2::StoreError::unavailable_reason(e.rc()), alloc, ctx, res);
  } catch (const std::exception& e) {
    unavailable_because(e.what(), OAUTH2_UNAVAILABLE_STORE, alloc, ctx, res);
  } catch (...) {
    unavailable_because("unknown error", OAUTH2_UNAVAILABLE_STORE, alloc, ctx, res);
  }
  return OAUTH2_OK;
}

}  // extern "C"
