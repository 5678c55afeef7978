// scripts/bench, run 5: what one JWT signature check costs in the core,
// without nginx and without the worker's cache of verified signatures (a
// token a worker sees for the first time pays this once).  Usage:
//   jwt_verify <seconds> <es256.pem> <eddsa.pem> <rs256.pem> <hs256.key>
// Prints one "alg verifications/s microseconds" line per key.

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "jwt.hpp"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s <seconds> <es256> <eddsa> <rs256> <hs256>\n",
                 argv[0]);
    return 2;
  }
  const double seconds = std::atof(argv[1]);
  for (int i = 2; i < 6; i++) {
    oauth2::JwtKeys keys;
    keys.add(oauth2::JwtKey::load_file(argv[i], i == 5));
    oauth2::Json claims(json_object());
    json_object_set_new(claims.get(), "exp", json_integer(4000000000));
    json_object_set_new(claims.get(), "iat", json_integer(1700000000));
    json_object_set_new(claims.get(), "jti",
                        json_string("bench-0123456789abcdef0123456789abcdef012"));
    json_object_set_new(claims.get(), "scope", json_string("read write"));
    const std::string token = oauth2::jwt_sign(*keys.signer(), claims.get(), "at+jwt");
    oauth2::JwtCheck check;
    check.now = 1700000000;
    long n = 0;
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    do {
      for (int k = 0; k < 50; k++, n++) {
        if (oauth2::jwt_verify(keys, token, check).status != oauth2::JwtStatus::kOk) {
          std::fprintf(stderr, "verification failed\n");
          return 1;
        }
      }
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                    .count();
    } while (elapsed < seconds);
    std::printf("%s %.0f %.1f\n", oauth2::jwt_alg_name(keys.signer()->alg()),
                n / elapsed, elapsed * 1e6 / n);
  }
  return 0;
}
