// oauth2-admin cleartokens: deletes expired tokens, as django-oauth-toolkit's
// management command of the same name does (docs/security.md R82).  Changes
// are kept short (a batch each) so that nginx workers issuing tokens never
// wait long for the store's writer lock.
//
// oauth2-admin token issue: an access token written straight into the
// store, for service accounts and tests; like the token endpoint, the
// store keeps only its SHA-256 (R43).

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "codec.hpp"
#include "crypto.hpp"
#include "cluster.hpp"
#include "expiry.hpp"
#include "json.hpp"
#include "model.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

constexpr size_t kBatch = 5000;

int cleartokens(const Invocation& inv) {
  size_t total = 0;
  if (auto store = open_store(inv, false)) {
    // the background expiry's sweep, in bounded rounds: over every realm
    // as the module's (those no longer registered too: R82), or over the
    // one --realm names
    const std::string realm = inv.realm_given ? inv.realm : std::string();
    const int64_t now = static_cast<int64_t>(time(nullptr));
    std::string after;
    for (;;) {
      SweepRound r = store->change([&](Txn& txn) {
        SweepRound round = sweep_expired(txn, realm, after, now, kBatch, kBatch * 10, now);
        round.removed += txn.revoked_first();
        txn.commit();
        return round;
      });
      total += r.removed;
      if (r.finished) break;
      after = r.last;
    }
  }
  Json obj(checked(json_object()));
  set_member(obj.get(), "deleted", checked(json_integer(static_cast<json_int_t>(total))));
  print_json(obj.get());
  return 0;
}

constexpr const char* kFallbackScope = "read write";  // oauth2_default_scope
constexpr int64_t kDefaultTokenTtl = 36000;           // oauth2_access_token_ttl

// The scope of the token: the one asked for, within the application's
// allowed scope, else all of that; nullopt with why in *refused when the
// scope asked for goes beyond it.
std::optional<std::string> token_scope(const Client& client,
                                       const std::optional<std::string>& asked,
                                       std::string* refused) {
  const std::string allowed = client.scope.empty() ? kFallbackScope : client.scope;
  std::string scope = asked ? *asked : allowed;
  std::vector<std::string_view> want, held;
  parse_scope(scope, &want);
  parse_scope(allowed, &held);
  for (std::string_view w : want) {
    if (std::find(held.begin(), held.end(), w) == held.end()) {
      *refused = "scope " + quoted(std::string(w)) +
                 " is not allowed for the application (it may have " + quoted(allowed) + ")";
      return std::nullopt;
    }
  }
  return scope;
}

// Writes t under a fresh token, returned in *token; R43: the store keeps
// only its SHA-256.
void put_new_token(Txn& txn, const std::string& realm, const Token& t, std::string* token) {
  for (int tries = 0;; tries++) {
    if (tries == 3) throw std::runtime_error("no fresh token found");
    *token = new_token();
    if (txn.put_token(realm, token_id(*token), t)) break;
  }
}

// The token endpoint's answer: {access_token, expires_in, token_type,
// scope}; token_type DPoP for a token bound to a key (RFC 9449 5).
void print_token(const std::string& token, int64_t lifetime, const std::string& scope, bool dpop) {
  // jansson copies the token: wipe that copy too before it is freed.
  Json obj(checked(json_object()));
  Json token_json(string_json(token));
  WipeJsonOnExit wipe_token_json(token_json.get());
  set_member(obj.get(), "access_token", json_incref(token_json.get()));
  set_member(obj.get(), "expires_in", json_integer(lifetime));
  set_member(obj.get(), "token_type", json_string(dpop ? "DPoP" : "Bearer"));
  set_member(obj.get(), "scope", string_json(scope));
  print_json(obj.get());
}

// What token issue was asked for.
struct IssueRequest {
  std::string client_id;
  std::optional<std::string> username;
  std::optional<std::string> scope;
  std::optional<int64_t> ttl;
  std::optional<std::string> jkt;  // --dpop-jkt: bound to that key
};

// --dpop-jkt: a JWK SHA-256 thumbprint (RFC 7638) as the proofs' keys
// give it, base64url without padding: 43 characters, the last of which
// holds 4 bits of the 256 (so one of 16)
std::optional<std::string> dpop_jkt_option(const Invocation& inv) {
  auto v = inv.value("dpop-jkt");
  if (!v) return std::nullopt;
  auto b64url = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  };
  const bool ok = v->size() == 43 && std::all_of(v->begin(), v->end(), b64url) &&
                  std::string_view("AEIMQUYcgkosw048").find(v->back()) != std::string_view::npos;
  if (!ok) {
    throw UsageError("--dpop-jkt: " + quoted(*v) +
                     " is not a JWK SHA-256 thumbprint (RFC 7638: 43 base64url characters)");
  }
  return v;
}

// The token to issue, read in txn: why not in *refused.
std::optional<Token> token_for(Txn& txn, const std::string& realm, const IssueRequest& rq,
                               std::string* refused) {
  auto client = txn.get_client(realm, rq.client_id);
  if (!client) {
    *refused = no_application(rq.client_id);
    return std::nullopt;
  }
  if (client->disabled) {
    *refused = "application " + quoted(rq.client_id) + " is disabled";
    return std::nullopt;
  }
  Token t;
  if (rq.username) {
    auto user = txn.get_user_by_username(realm, *rq.username);
    if (!user || !user->is_active) {  // R70
      *refused = (user ? "user " + quoted(*rq.username) + " is inactive"
                       : "no user " + quoted(*rq.username));
      return std::nullopt;
    }
    t.user = std::to_string(user->id);
  }
  if (client->dpop_bound_access_tokens && !rq.jkt) {  // RFC 9449 5.2
    *refused = "application " + quoted(rq.client_id) +
               " takes DPoP-bound tokens only (dpop_bound_access_tokens): give --dpop-jkt "
               "<the JWK SHA-256 thumbprint of its key>";
    return std::nullopt;
  }
  if (rq.jkt) t.jkt = *rq.jkt;
  auto granted = token_scope(*client, rq.scope, refused);
  if (!granted) return std::nullopt;
  t.scope = std::move(*granted);
  const int64_t lifetime = rq.ttl                     ? *rq.ttl
                           : client->access_token_ttl ? client->access_token_ttl
                                                      : kDefaultTokenTtl;
  t.type = TokenType::kAccess;
  t.issued_at = static_cast<int64_t>(time(nullptr));
  t.expires_at = t.issued_at + lifetime;
  t.client_id = client->client_id;
  return t;
}

// --out: a new file, mode 0600 (it holds bearer tokens)
FILE* open_token_file(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error(errno_text("cannot create " + quoted(path)));
  FILE* f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    throw std::runtime_error(errno_text("fdopen"));
  }
  return f;
}

// --count: n tokens, in changes of kBatch each (one commit and one sync
// per batch); every token, or a uniform sample of --sample of them, goes
// to --out.
struct Bulk {
  uint64_t count = 0;  // 0: one token, printed
  uint64_t sample = 0;
  std::string out;
};

uint64_t count_value(const Invocation& inv, const char* name, uint64_t max) {
  auto v = inv.value(name);
  if (!v) return 0;
  char* end = nullptr;
  uint64_t n = std::strtoull(v->c_str(), &end, 10);
  if (v->empty() || (*v)[0] == '-' || *end || n == 0 || n > max) {
    throw UsageError(std::string("--") + name + ": " + quoted(*v) + " is not a number from 1 to " +
                     std::to_string(max));
  }
  return n;
}

// --count, --out and --sample, checked before the store is opened
Bulk bulk_options(const Invocation& inv) {
  Bulk b;
  b.count = count_value(inv, "count", 100000000);
  b.sample = count_value(inv, "sample", b.count ? b.count : 1);
  auto out = inv.value("out");
  if (b.count && !out) throw UsageError("token issue --count needs --out <file>");
  if (!b.count && (out || b.sample)) throw UsageError("--out and --sample go with --count");
  if (out) b.out = *out;
  if (!b.sample) b.sample = b.count;
  return b;
}

// What one token costs a local store, its index entries included, with
// room to spare (README, "The store": 214 to 253 bytes at 1k to 10M)
constexpr uint64_t kBytesPerToken = 256;

// --count n in a local store that has not the room for n tokens is
// refused before any: a run that filled it would leave it full of tokens
// no one holds, every realm's writes refused (503) until they expire.
// (A mirror's room is etcd's: etcd refuses what passes its quota.)
bool room_for(Store& store, uint64_t count) {
  if (store.is_mirror()) return true;
  const Store::Usage u = store.usage();
  const uint64_t room = u.map_size > u.used ? u.map_size - u.used : 0;
  if (count <= room / kBytesPerToken) return true;
  constexpr uint64_t kMiB = 1024 * 1024;
  fail("--count " + std::to_string(count) + " needs about " +
       std::to_string(count * kBytesPerToken / kMiB + 1) + " MiB of the store, which has " +
       std::to_string(room / kMiB) + " MiB free of its " + std::to_string(u.map_size / kMiB) +
       " MiB (oauth2_store's size=): issue fewer, or make it larger");
  return false;
}

// The tokens sampled so far, written to f; false if they could not be.
bool write_sample(const std::vector<std::string>& kept, FILE* f) {
  bool written = true;
  for (const std::string& tok : kept) {
    written = fprintf(f, "%s\n", tok.c_str()) > 0 && written;
  }
  return fflush(f) == 0 && fsync(fileno(f)) == 0 && written;
}

// The tokens, issued in the child of token_issue_bulk and written to f.
// A failure once some are committed keeps the file, with a sample of
// those (kExitPartial): they are valid until they expire.
int token_issue_many(const Invocation& inv, Store& store, const IssueRequest& rq, const Bulk& b,
                     FILE* f) {
  const uint64_t count = b.count, sample = b.sample;
  const std::string* out_path = &b.out;
  if (!room_for(store, count)) return kExitFailure;
  std::vector<std::string> kept;  // reservoir sampling (Algorithm R)
  kept.reserve(std::min<uint64_t>(sample, 1000000));
  uint64_t issued = 0;
  int64_t lifetime = 0;
  auto pick = [] {
    uint64_t v;
    random_bytes(reinterpret_cast<unsigned char*>(&v), sizeof(v));
    return v;
  };
  uint64_t round = kBatch * 2;  // halved while etcd refuses it as too large
  while (issued < count) {
    round = std::min<uint64_t>(round, count - issued);
    std::vector<std::string> tokens;
    std::string refused;
    bool ok = false;
    try {
      ok = halving_while_too_large(round, [&] {
        return store.change([&](Txn& txn) {
          tokens.clear();
          auto t = token_for(txn, inv.realm, rq, &refused);
          if (!t) return false;
          lifetime = t->expires_at - t->issued_at;
          for (uint64_t i = 0; i < round; i++) {
            put_new_token(txn, inv.realm, *t, &tokens.emplace_back());
          }
          txn.commit();
          return true;
        });
      });
    } catch (const std::exception& e) {
      refused = std::string("store ") + quoted(inv.store) + ": " + e.what();
    }
    if (!ok && issued == 0) return fail(refused);
    if (!ok) {
      fail(refused);
      fail(std::to_string(issued) + " tokens were issued before that, valid for " +
           std::to_string(lifetime) + " s: " +
           (write_sample(kept, f) ? std::to_string(kept.size()) + " of them are in "
                                  : std::string("none of them could be written to ")) +
           quoted(*out_path));
      return kExitPartial;
    }
    for (std::string& tok : tokens) {
      if (kept.size() < sample) {
        kept.push_back(std::move(tok));
      } else if (uint64_t j = pick() % (issued + 1); j < sample) {
        kept[j] = std::move(tok);
      }
      issued++;
    }
  }
  if (!write_sample(kept, f)) {
    throw std::runtime_error(errno_text("cannot write " + quoted(*out_path)));
  }
  Json obj(checked(json_object()));
  set_member(obj.get(), "issued", json_integer(static_cast<json_int_t>(issued)));
  set_member(obj.get(), "written", json_integer(static_cast<json_int_t>(kept.size())));
  set_member(obj.get(), "out", string_json(*out_path));
  set_member(obj.get(), "expires_in", json_integer(lifetime));
  print_json(obj.get());
  return 0;
}

// --count: the file is made by this process, as the caller, as backup's
// is: it holds bearer tokens, which must not be the store owner's to read
// (nginx's workers, and whatever else runs as www-data).  The tokens are
// issued and written by a child that opens the store as its owner
// (open_store); a run that fails before any token leaves no file, one
// that fails after keeps it (kExitPartial).  One that exists refuses the
// run before any token.
int token_issue_bulk(const Invocation& inv, const IssueRequest& rq, const Bulk& b) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(open_token_file(b.out), fclose);
  int rc = kExitFailure;
  try {
    rc = store_owner_child(inv, [&] {
      auto store = open_store(inv, false);
      if (!store || !valid_client_id(rq.client_id)) return fail(no_application(rq.client_id));
      return token_issue_many(inv, *store, rq, b, f.get());
    });
  } catch (...) {
    unlink(b.out.c_str());
    throw;
  }
  if (rc != 0 && rc != kExitPartial) unlink(b.out.c_str());
  return rc == 0 ? 0 : kExitFailure;
}

int token_issue(const Invocation& inv) {
  IssueRequest rq;
  auto client_id = inv.value("client-id");
  if (!client_id) throw UsageError("token issue needs --client-id");
  rq.client_id = *client_id;
  rq.scope = scope_option(inv);
  rq.ttl = ttl_option(inv, "ttl");
  rq.username = inv.value("user");
  rq.jkt = dpop_jkt_option(inv);
  const Bulk bulk = bulk_options(inv);
  if (bulk.count) return token_issue_bulk(inv, rq, bulk);

  auto store = open_store(inv, false);
  if (!store || !valid_client_id(rq.client_id)) {
    return fail(no_application(rq.client_id));
  }
  std::string token;
  WipeOnExit wipe_token(token);
  std::optional<Token> issued;
  std::string refused;
  store->change([&](Txn& txn) {
    issued = token_for(txn, inv.realm, rq, &refused);
    if (!issued) return;
    put_new_token(txn, inv.realm, *issued, &token);
    txn.commit();
  });
  if (!issued) return fail(refused);
  print_token(token, issued->expires_at - issued->issued_at, issued->scope, !issued->jkt.empty());
  return 0;
}

const OptionSpec kTokenIssueOptions[] = {
    {"client-id", true, false}, {"user", true, false},     {"scope", true, false},
    {"ttl", true, false},       {"count", true, false},    {"out", true, false},
    {"sample", true, false},    {"dpop-jkt", true, false},
};

const char kTokenIssueUsage[] =
    "usage: oauth2-admin token issue --client-id <client_id> "
    "[--user <username>]\n"
    "           [--scope \"<scope> ...\"] [--ttl <seconds>] [--dpop-jkt <thumbprint>]\n"
    "           [--count <n> --out <file> [--sample <k>]]\n"
    "\n"
    "Issues an access token to an application, for a user with --user,\n"
    "straight into the store: for service accounts and tests.  Prints\n"
    "{\"access_token\", \"expires_in\", \"token_type\": \"Bearer\" (\"DPoP\" with\n"
    "--dpop-jkt), \"scope\"}\n"
    "as the token endpoint does; the store keeps only the token's SHA-256.\n"
    "Exit 1 for an unknown or disabled application, an unknown or inactive\n"
    "user, a scope the application may not have, or an application that\n"
    "takes DPoP-bound tokens only, without --dpop-jkt.\n"
    "\n"
    "  --client-id <client_id>    the application\n"
    "  --user <username>          the user the token acts for (default:\n"
    "                             none, a client token)\n"
    "  --scope \"<scope> ...\"      within the application's allowed scope\n"
    "                             (default: all of it; \"read write\" when\n"
    "                             it has none, as oauth2_default_scope)\n"
    "  --ttl <seconds>            lifetime, 1 to 315360000 (default: the\n"
    "                             application's, else 36000)\n"
    "  --dpop-jkt <thumbprint>    bind the token to the client's key (RFC\n"
    "                             9449): its JWK SHA-256 thumbprint (RFC\n"
    "                             7638); token_type DPoP, refused as Bearer\n"
    "  --count <n>                n tokens (1 to 100000000), 10000 to a\n"
    "                             transaction (fewer when etcd refuses\n"
    "                             as many), written one per line to\n"
    "                             --out <file> (a new file, mode 0600,\n"
    "                             the caller's even when run as root);\n"
    "                             prints {\"issued\", \"written\", \"out\",\n"
    "                             \"expires_in\"}: to provision load tests\n"
    "  --sample <k>               with --count: only k of the tokens,\n"
    "                             chosen uniformly, go to the file\n";

const char kClearTokensUsage[] =
    "usage: oauth2-admin cleartokens [--realm <name>]\n"
    "\n"
    "Deletes the expired tokens of every realm (those of a realm no longer\n"
    "registered too), as oauth2_expiry_cleanup does, or with --realm only\n"
    "those of that realm, in batches of 5000 per transaction, and prints\n"
    "{\"deleted\": <count>}.  Run it from cron when oauth2_expiry_cleanup\n"
    "is off: expired tokens are already refused, this only bounds the\n"
    "store's size.\n";

// Writes key (and one newline, which oauth2_handshake_key's loader drops)
// to a new file, mode 0600, never over an existing one.
void write_key_file(const std::string& path, const std::string& key) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error(errno_text("cannot create " + quoted(path)));
  }
  std::string text = key + "\n";
  WipeOnExit wipe_text(text);
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = fsync(fd) == 0 && ok;
  ok = close(fd) == 0 && ok;
  if (!ok) {
    int saved = errno;
    unlink(path.c_str());
    errno = saved;
    throw std::runtime_error(errno_text("cannot write " + quoted(path)));
  }
}

// The child of handshake_key_extract: its exit status says where the key
// is, for the parent to keep or remove the file it wrote.
constexpr int kKeyMoved = 0;              // out of the store
constexpr int kKeyStayed = 1;             // in the store still: no second copy wanted
constexpr int kKeyUnsure = kExitPartial;  // its removal may have been applied

// After the removal failed: whether the key is in the store still, read
// once the mirror has caught up with etcd in cluster mode (a lost answer
// or a mirror behind can hide a removal etcd applied).  kKeyUnsure when
// that cannot be known.
int key_left_after_failure(Store& store) {
  try {
    if (Cluster* cluster = store.cluster()) cluster->catch_up(store);
    Txn txn = store.read();
    if (txn.get_meta(kHandshakeKeyMeta)) return kKeyStayed;
    fprintf(stderr, "%s: the key has left the store all the same\n", kProg);
    return kKeyMoved;
  } catch (const std::exception& e) {
    fprintf(stderr, "%s: cannot tell whether the key left the store: %s\n", kProg, e.what());
    return kKeyUnsure;
  }
}

// handshake_key_extract's child: sends the key on key_fd, and once the
// parent has written it to the file ('y' on ack_fd) removes it from the
// store; exits with kKeyMoved, kKeyStayed or kKeyUnsure.
[[noreturn]] void extract_in_child(const Invocation& inv, int key_fd, int ack_fd) {
  int rc = kKeyStayed;
  try {
    std::unique_ptr<Store> store = open_store(inv, false);
    std::optional<std::string> key;
    if (store) {
      Txn txn = store->read();
      key = txn.get_meta(kHandshakeKeyMeta);
    }
    if (!key) {
      fprintf(stderr,
              "%s: the store holds no handshake key: nothing to "
              "extract\n",
              kProg);
      _exit(kKeyStayed);
    }
    WipeOnExit wipe_key(*key);
    bool sent = write(key_fd, key->data(), key->size()) == static_cast<ssize_t>(key->size());
    close(key_fd);
    char ack = 0;
    if (sent && read(ack_fd, &ack, 1) == 1 && ack == 'y') {
      try {
        store->change([&](Txn& txn) {
          txn.delete_meta(kHandshakeKeyMeta);
          txn.commit();
        });
        rc = kKeyMoved;
      } catch (const std::exception& e) {
        fprintf(stderr, "%s: %s\n", kProg, e.what());
        rc = key_left_after_failure(*store);
      }
    }
  } catch (const std::exception& e) {
    fprintf(stderr, "%s: %s\n", kProg, e.what());
  }
  fflush(nullptr);
  _exit(rc);
}

// Moves the handshake key that releases before 0.9 generated into the
// store (in clear: a dump of the store could forge handshake tokens) out
// to a file for oauth2_handshake_key.  The store is read, and the key
// removed from it, by a child process as the store's owner (open_store);
// the file is written by this process, as the caller, before the key
// leaves the store, and removed only when the child says the key is in
// the store still: a removal that may have been applied (an answer lost,
// a mirror behind, the child killed) leaves the file, the only copy
// perhaps.
int handshake_key_extract(const Invocation& inv) {
  const std::string& path = inv.operands[0];
  int key_pipe[2], ack_pipe[2];
  if (pipe(key_pipe) != 0 || pipe(ack_pipe) != 0) {
    throw std::runtime_error(errno_text("pipe"));
  }
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(errno_text("fork"));
  if (pid == 0) {
    close(key_pipe[0]);
    close(ack_pipe[1]);
    extract_in_child(inv, key_pipe[1], ack_pipe[0]);
  }
  close(key_pipe[1]);
  close(ack_pipe[0]);
  std::string key;
  WipeOnExit wipe_key(key);
  char buf[256];
  ssize_t n;
  while ((n = read(key_pipe[0], buf, sizeof(buf))) > 0) key.append(buf, n);
  OPENSSL_cleanse(buf, sizeof(buf));
  close(key_pipe[0]);
  char ack = 'n';
  std::string failed;
  if (!key.empty()) {
    try {
      write_key_file(path, key);
      ack = 'y';
    } catch (const std::exception& e) {
      failed = e.what();
    }
  }
  ssize_t sent = write(ack_pipe[1], &ack, 1);
  (void)sent;
  close(ack_pipe[1]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!failed.empty()) throw std::runtime_error(failed);
  const int child = WIFEXITED(status) ? WEXITSTATUS(status) : kKeyUnsure;
  if (child != kKeyMoved) {
    if (ack != 'y') return kExitFailure;
    if (child == kKeyStayed) {
      unlink(path.c_str());  // the key stayed in the store: no second copy
      return kExitFailure;
    }
    return fail("the key's removal from the store may have been applied: " + quoted(path) +
                " keeps the key (it may be the only copy; name it in oauth2_handshake_key)."
                " Once the store can be reached, 'oauth2-admin handshake-key extract' with"
                " another file says whether the store still holds it");
  }
  Json obj(checked(json_object()));
  set_member(obj.get(), "handshake_key", string_json(path));
  set_member(obj.get(), "removed_from_store", json_true());
  print_json(obj.get());
  return 0;
}

const char kHandshakeKeyExtractUsage[] =
    "usage: oauth2-admin handshake-key extract <file>\n"
    "\n"
    "Writes the handshake key that an earlier release generated and kept in\n"
    "the store to <file> (mode 0600; an existing file is never\n"
    "overwritten), then removes it from the store, so that a dump of the\n"
    "store cannot forge handshake tokens.  Name the file in nginx.conf with\n"
    "oauth2_handshake_key <file>; handshakes made before keep validating.\n"
    "Prints {\"handshake_key\": <file>, \"removed_from_store\": true}; exit\n"
    "1 when the store holds no such key.  <file> is removed again only when\n"
    "the key is known to be in the store still: when its removal may have\n"
    "been applied but cannot be confirmed (etcd's answer lost, the mirror\n"
    "behind), exit 1 and <file> keeps the key.\n";

const Command kTokenCommands[] = {
    {"handshake-key extract", "<file>",
     "move an old release's handshake key from the store to a file", kHandshakeKeyExtractUsage,
     nullptr, 0, 1, 1, handshake_key_extract},
    {"token issue", "--client-id <id> ...", "issue an access token directly", kTokenIssueUsage,
     kTokenIssueOptions, std::size(kTokenIssueOptions), 0, 0, token_issue},
    {"cleartokens", "", "delete expired tokens", kClearTokensUsage, nullptr, 0, 0, 0, cleartokens},
};

}  // namespace

void add_token_commands(Commands& out) {
  for (const Command& c : kTokenCommands) out.push_back(&c);
}

}  // namespace oauth2::admin
