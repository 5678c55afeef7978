// scripts/bench, run 5b: what one bearer validation costs in the core,
// without nginx: oauth2::validate in a loop on one token, from the
// worker's validation cache (oauth2_validation_cache) and with it off
// (every call reads the store), for an opaque token and a JWT of each key.
// Usage:
//   validate_loop <store dir> <calls> <es256.pem> <eddsa.pem> <rs256.pem> <hs256.key>
// Prints one "kind chars cached_us store_us" line per token: the median of
// five passes of <calls> each.

#include <jansson.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "crypto.hpp"
#include "endpoints.hpp"
#include "jwt.hpp"
#include "location.hpp"
#include "request.hpp"
#include "store.hpp"

namespace {

oauth2_str_t str(const std::string& s) {
  return oauth2_str_t{reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}

// a client_credentials token from the token endpoint of a location with
// key (null: opaque)
std::string issue(oauth2::Store& store, const std::shared_ptr<oauth2::JwtKey>& key, int64_t now) {
  oauth2::Location loc;
  loc.endpoint = OAUTH2_ENDPOINT_TOKEN;
  loc.realm = "default";
  loc.issuer = "https://bench.example.com";
  if (key) {
    loc.jwt_access = true;
    loc.jwt_keys.add(key);
  }
  const std::string method = "POST", type = "application/x-www-form-urlencoded",
                    auth = "Basic YmVuY2g6YmVuY2gtc2VjcmV0",  // bench:bench-secret
      body = "grant_type=client_credentials", address = "127.0.0.1";
  oauth2_request_t c{};
  c.method = str(method);
  c.content_type = str(type);
  c.content_type_count = 1;
  c.has_authorization = 1;
  c.authorization = str(auth);
  c.body = str(body);
  c.now = now;
  c.address = str(address);
  oauth2::Request req(c, loc);
  oauth2::EndpointResult e = oauth2::token_endpoint(store, req);
  if (e.pending) {
    e.pending->run();
    e.response = e.pending->finish();
  }
  oauth2::Json answer(json_loads(e.response.body.c_str(), 0, nullptr));
  const char* token = json_string_value(json_object_get(answer.get(), "access_token"));
  if (e.response.status != 200 || !token) {
    std::fprintf(stderr, "token endpoint: %d %s\n", e.response.status, e.response.body.c_str());
    std::exit(1);
  }
  return token;
}

// µs a call, the median of five passes
double time_validate(oauth2::Store& store, const std::shared_ptr<oauth2::JwtKey>& key,
                     const std::string& token, int64_t now, long calls, bool cached) {
  oauth2::Location loc;
  loc.auth = true;
  loc.realm = "default";
  loc.issuer = "https://bench.example.com";
  if (key) loc.jwt_keys.add(key);
  loc.valid.set_capacity(cached ? OAUTH2_VALID_CACHE_DEFAULT : 0);
  oauth2::BearerRequest b;
  const std::string header = "Bearer " + token;
  b.has_authorization = true;
  b.authorization = header;
  b.now = now;
  std::vector<double> passes;
  for (int pass = 0; pass < 6; pass++) {
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < calls; i++) {
      if (oauth2::validate(store, loc, b).result != OAUTH2_VALID) {
        std::fprintf(stderr, "validation failed\n");
        std::exit(1);
      }
    }
    const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    if (pass > 0) passes.push_back(took.count() / calls);  // the first warms up
  }
  std::sort(passes.begin(), passes.end());
  return passes[passes.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s <store dir> <calls> <es256> <eddsa> <rs256> <hs256>\n",
                 argv[0]);
    return 2;
  }
  oauth2::Store store(argv[1], size_t(256) << 20);
  oauth2::Client client;
  client.realm = "default";
  client.client_id = "bench";
  client.name = "bench";
  client.secret_hash = oauth2::hash_secret("bench-secret");
  client.grant_types = {"client_credentials"};
  store.change([&](oauth2::Txn& txn) {
    txn.put_client(client, true);
    txn.commit();
  });
  const long calls = std::atol(argv[2]);
  const int64_t now = std::time(nullptr);
  for (int i = 2; i < 7; i++) {
    std::shared_ptr<oauth2::JwtKey> key;
    if (i > 2) key = oauth2::JwtKey::load_file(argv[i], i == 6);
    const std::string token = issue(store, key, now);
    const double cached = time_validate(store, key, token, now, calls, true);
    const double uncached = time_validate(store, key, token, now, calls, false);
    std::printf("%s %zu %.3f %.3f\n", key ? oauth2::jwt_alg_name(key->alg()) : "opaque",
                token.size(), cached, uncached);
  }
  return 0;
}
