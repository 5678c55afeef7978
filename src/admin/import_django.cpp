// oauth2-admin import-django: the users (auth.user) and applications
// (django-oauth-toolkit's oauth2_provider.application) of a Django site,
// from the output of `manage.py dumpdata`, in one change (Store::change):
// all of it or, on any error, nothing.
//
// Users keep their Django id when it is free and their pbkdf2_sha256
// password hash as it is, so they log in with the password they had;
// hashes of other algorithms cannot be verified here and become unusable.
// Client secrets are stored hashed whichever way DOT kept them: in clear
// (DOT 1.x: hashed here) or as a Django password hash (DOT 2+: kept, and
// verify_secret understands it).  Records that exist in the store are
// skipped, never overwritten; records of other models are ignored.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "codec.hpp"
#include "crypto.hpp"
#include "json.hpp"
#include "model.hpp"
#include "password.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

constexpr size_t kMaxDump = size_t(256) << 20;  // bytes
constexpr size_t kMaxDepth = 32;                // a dump needs 4 (array, record, fields,
                                                // groups); jansson recurses on each level
constexpr size_t kMaxExamples = 10;             // names listed in one warning

// Bad input: exit 1, nothing written.
class BadDump : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// --------------------------------------------------------------- input

// The whole file, or stdin for "-"; at most kMaxDump bytes.
std::string read_dump(const std::string& path) {
  int fd = STDIN_FILENO;
  if (path != "-") {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) throw BadDump(errno_text("cannot open it"));
  }
  struct Closer {
    int fd;
    ~Closer() {
      if (fd != STDIN_FILENO) close(fd);
    }
  } closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0) {
    throw BadDump(errno_text("cannot stat it"));
  }
  if (S_ISDIR(st.st_mode)) throw BadDump("a directory, not a file");
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > kMaxDump) {
    throw BadDump("larger than 256 MiB");
  }
  std::string data;
  if (S_ISREG(st.st_mode)) data.reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw BadDump(errno_text("cannot read it"));
    if (n == 0) break;
    if (data.size() + static_cast<size_t>(n) > kMaxDump) {
      throw BadDump("larger than 256 MiB");
    }
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

// Refuses nesting deeper than kMaxDepth before jansson, which recurses,
// ever sees it (docs/security.md catalogue 2.4).
void check_depth(std::string_view s) {
  if (json_too_deep(s, kMaxDepth)) {
    throw BadDump("not a dumpdata file: nested deeper than " + std::to_string(kMaxDepth) +
                  " levels");
  }
}

Json parse_dump(const std::string& data) {
  check_depth(data);
  json_error_t err;
  // RFC 8259 JSON only: no NUL in strings, valid UTF-8, nothing after the
  // value, and a key given twice is an error, not a silent choice
  Json root(json_loadb(data.data(), data.size(), JSON_REJECT_DUPLICATES, &err));
  if (!root) {
    // jansson ends its text with "near '<the input there>'": a secret
    // in clear (DOT 1.x), which stderr and the logs it goes to never see
    std::string why(err.text);
    if (size_t near = why.find(" near "); near != std::string::npos) why.resize(near);
    throw BadDump("not valid JSON (line " + std::to_string(err.line) + ", column " +
                  std::to_string(err.column) + "): " + quoted(why));
  }
  if (!json_is_array(root.get())) {
    throw BadDump("not a dumpdata file: the top level is not an array");
  }
  return root;
}

// ISO 8601 as Django's JSON encoder writes datetimes
// ("2024-05-01T10:20:30.123Z", "+02:00" offsets, naive values taken as
// UTC) to unix time.
std::optional<int64_t> parse_iso8601(std::string_view s) {
  size_t pos = 0;
  auto digits = [&](size_t n, int* out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
      char ch = s[pos + i];
      if (ch < '0' || ch > '9') return false;
      v = v * 10 + (ch - '0');
    }
    pos += n;
    *out = v;
    return true;
  };
  auto expect = [&](char ch) {
    if (pos >= s.size() || s[pos] != ch) return false;
    pos++;
    return true;
  };
  int y, mo, d, h, mi, sec = 0;
  if (!digits(4, &y) || !expect('-') || !digits(2, &mo) || !expect('-') || !digits(2, &d)) {
    return std::nullopt;
  }
  if (pos >= s.size() || (s[pos] != 'T' && s[pos] != ' ')) {
    return std::nullopt;
  }
  pos++;
  if (!digits(2, &h) || !expect(':') || !digits(2, &mi)) return std::nullopt;
  if (pos < s.size() && s[pos] == ':') {
    pos++;
    if (!digits(2, &sec)) return std::nullopt;
    if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
      size_t start = ++pos;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') pos++;
      if (pos == start || pos - start > 9) return std::nullopt;
    }
  }
  int offset = 0;  // seconds east of UTC
  if (pos < s.size()) {
    if (s[pos] == 'Z') {
      pos++;
    } else if (s[pos] == '+' || s[pos] == '-') {
      int sign = s[pos] == '-' ? -1 : 1, oh, om;
      pos++;
      if (!digits(2, &oh)) return std::nullopt;
      expect(':');
      if (!digits(2, &om) || oh > 23 || om > 59) return std::nullopt;
      offset = sign * (oh * 3600 + om * 60);
    } else {
      return std::nullopt;
    }
  }
  if (pos != s.size()) return std::nullopt;
  static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
      h > 23 || mi > 59 || sec > 59) {
    return std::nullopt;
  }
  // days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant)
  int64_t yy = y - (mo <= 2);
  int64_t era = yy / 400;
  int64_t yoe = yy - era * 400;
  int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  return days * 86400 + h * 3600 + mi * 60 + sec - offset;
}

// The fields of one record, read with their types checked: a wrong type
// is bad input, named by the record's position.
class Fields {
 public:
  Fields(json_t* fields, size_t index, std::string model)
      : fields_(fields), index_(index), model_(std::move(model)) {}

  [[noreturn]] void bad(const std::string& what) const {
    throw BadDump("record " + std::to_string(index_) + " (" + model_ + "): " + what);
  }

  // nullopt when absent or null; bad() for any other type
  std::optional<std::string> str(const char* key, bool required) const {
    json_t* v = json_object_get(fields_, key);
    if (!v || json_is_null(v)) {
      if (required) bad(std::string("no \"") + key + "\"");
      return std::nullopt;
    }
    if (!json_is_string(v)) bad(std::string("\"") + key + "\" is not a string");
    return std::string(json_string_value(v), json_string_length(v));
  }

  bool boolean(const char* key, bool dflt) const {
    json_t* v = json_object_get(fields_, key);
    if (!v || json_is_null(v)) return dflt;
    if (!json_is_boolean(v)) {
      bad(std::string("\"") + key + "\" is not true or false");
    }
    return json_is_true(v);
  }

  std::optional<int64_t> time(const char* key) const {
    auto s = str(key, false);
    if (!s) return std::nullopt;
    auto t = parse_iso8601(*s);
    if (!t) bad(std::string("\"") + key + "\" is not an ISO 8601 date-time");
    return t;
  }

 private:
  json_t* fields_;
  size_t index_;
  std::string model_;
};

// ---------------------------------------------------------------- model

// What the dump says of a record and what becomes of it; the notes are
// reported only for records that are imported.
struct DjangoUser {
  std::optional<uint64_t> pk;
  User user;
  bool importable = true;
  bool trimmed = false;  // names cut or stripped of controls
  bool email_dropped = false;
  bool cheap_hash = false;  // fewer iterations than asked
  std::string unusable;     // why the password is unusable, or ""
};

struct DjangoApp {
  Client client;
  bool importable = true;
  std::vector<std::string> notes;
};

// A warning that names up to kMaxExamples of the records it is about.
struct Tally {
  size_t n = 0;
  std::vector<std::string> examples;

  void add(std::string example) {
    if (n++ < kMaxExamples) examples.push_back(std::move(example));
  }
  // "<n> <one|many>: example, ..."
  std::string text(const std::string& one, const std::string& many) const {
    std::string out = std::to_string(n) + " " + (n == 1 ? one : many);
    for (size_t i = 0; i < examples.size(); i++) {
      out += (i == 0 ? ": " : ", ") + examples[i];
    }
    if (n > examples.size()) out += ", ...";
    return out;
  }
};

struct Report {
  std::vector<std::string> warnings;
  size_t users_imported = 0, users_skipped = 0, unusable = 0;
  size_t apps_imported = 0, apps_skipped = 0;
  Tally bad_username, existing_user, pk_moved, trimmed, bad_email;
  Tally cheap_hashes, existing_app;
  std::map<std::string, Tally> unusable_by_reason;
  std::map<std::string, size_t> ignored;  // model: records
};

// The algorithm a Django password hash names ("md5", "argon2", ...), or
// why the value is no hash at all: the reason an unusable password keeps.
std::string hash_reason(std::string_view p) {
  if (p.empty()) return "empty";
  if (p[0] == '!') return "unusable";
  size_t dollar = p.find('$');
  if (dollar == 0 || dollar == std::string_view::npos || dollar > 32) {
    return "unknown";
  }
  for (char ch : p.substr(0, dollar)) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) {
      return "unknown";
    }
  }
  return std::string(p.substr(0, dollar));
}

// The hashers Django ships: a client secret that starts with one of
// these and '$' is a hash (DOT 2+), anything else a secret in clear.
bool django_hash_prefix(std::string_view s) {
  static const char* const kHashers[] = {"pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256",
                                         "bcrypt",        "scrypt",      "sha1",   "md5",
                                         "unsalted_sha1", "crypt"};
  size_t dollar = s.find('$');
  return dollar != std::string_view::npos &&
         one_of(s.substr(0, dollar), kHashers, std::size(kHashers));
}

// The iterations of a pbkdf2_sha256 hash (is_password_hash holds).
unsigned long hash_iterations(std::string_view p) {
  unsigned long n = 0;
  for (char ch : p.substr(p.find('$') + 1)) {
    if (ch == '$') break;
    n = n * 10 + static_cast<unsigned long>(ch - '0');
  }
  return n;
}

// The most PBKDF2 iterations an imported hash keeps: twice the configured
// ones, and Django 5.2's 1,000,000 whatever those are.  A hash claiming
// more (up to the 10^8 the store reads) would cost every wrong guess at it
// that many: seconds of a hash thread each.
unsigned long max_imported_iterations(unsigned iterations) {
  return std::max<unsigned long>(1000000, 2ul * iterations);
}

// s without C0, DEL and C1 controls, cut at a character boundary to at
// most max bytes.
std::string fit_text(const std::string& s, size_t max) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) continue;
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
      i++;
      continue;
    }
    out.push_back(s[i]);
  }
  if (out.size() > max) {
    size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) {
      cut--;
    }
    out.resize(cut);
  }
  return out;
}

constexpr json_int_t kMaxImportedPk = (json_int_t(1) << 53) - 1;

DjangoUser read_user(const Fields& f, json_t* record, unsigned iterations, Report* report) {
  DjangoUser du;
  User& u = du.user;
  json_t* pk = json_object_get(record, "pk");
  if (pk && !json_is_null(pk)) {
    // at most 2^53 - 1: an id is a JSON number to every client (the
    // API's "id", OpenID's sub), and the ids after it go on from it
    if (!json_is_integer(pk) || json_integer_value(pk) < 1 ||
        json_integer_value(pk) > kMaxImportedPk) {
      f.bad("\"pk\" is not an integer from 1 to 2^53 - 1");
    }
    du.pk = static_cast<uint64_t>(json_integer_value(pk));
  }
  u.username = *f.str("username", true);
  u.password = *f.str("password", true);
  u.email = f.str("email", false).value_or("");
  u.first_name = f.str("first_name", false).value_or("");
  u.last_name = f.str("last_name", false).value_or("");
  u.is_staff = f.boolean("is_staff", false);
  u.is_superuser = f.boolean("is_superuser", false);
  u.is_active = f.boolean("is_active", true);
  u.date_joined = f.time("date_joined").value_or(static_cast<int64_t>(::time(nullptr)));
  u.last_login = f.time("last_login").value_or(0);

  if (!valid_username(u.username)) {
    du.importable = false;
    report->bad_username.add(quoted(u.username));
    return du;
  }
  std::string first = fit_text(u.first_name, kMaxPersonName);
  std::string last = fit_text(u.last_name, kMaxPersonName);
  if (first != u.first_name || last != u.last_name) {
    du.trimmed = true;
    u.first_name = std::move(first);
    u.last_name = std::move(last);
  }
  if (u.email.size() > kMaxEmail || has_control(u.email) || has_c1_control(u.email)) {
    du.email_dropped = true;
    u.email.clear();
  }
  if (is_password_hash(u.password) &&
      hash_iterations(u.password) > max_imported_iterations(iterations)) {
    du.unusable = "costly";
    wipe(u.password);
    u.password = "!costly";
  } else if (is_password_hash(u.password)) {
    du.cheap_hash = hash_iterations(u.password) < iterations;
  } else {
    du.unusable = hash_reason(u.password);
    wipe(u.password);
    u.password = "!" + du.unusable;
  }
  return du;
}

std::string app_label(const Client& c) {
  return "application " + quoted(c.name) + " (" + quoted(c.client_id) + ")";
}

// Why the application must be skipped, or "": the rules of `app add` on
// what DOT kept (c's name defaults to its client_id, its grant types are
// DOT's grant's).
std::string skip_reason(Client& c, const std::string& type, const std::string& grant) {
  if (!valid_client_id(c.client_id)) {
    return "the client_id is not 1 to 200 bytes of UTF-8 without control "
           "characters";
  }
  // a client's own tokens carry its client_id as their subject, a user's
  // their id: a number would read as a user's (RFC 9068 sub, R41)
  if (reads_as_number(c.client_id)) {
    return "a client_id that reads as a number would read as a user's id (sub)";
  }
  if (c.name.empty()) c.name = c.client_id;
  if (!valid_app_name(c.name)) {
    return "the name is not 1 to 255 characters without control "
           "characters";
  }
  if (type != "confidential" && type != "public") {
    return "unknown client_type " + quoted(type);
  }
  c.confidential = type == "confidential";
  if (auto grants = dot_grant_types(grant)) {
    c.grant_types = std::move(*grants);
  } else if (grant == "implicit") {
    return "the implicit grant is not supported (RFC 9700 2.1.2, "
           "OAuth 2.1): register the client again for "
           "authorization_code with PKCE";
  } else if (grant == "openid-hybrid") {
    return "the OpenID Connect hybrid flow is not supported";
  } else {
    return "unknown authorization_grant_type " + quoted(grant);
  }
  if (!c.confidential && c.allows_grant("client_credentials")) {
    return "a public client cannot use client_credentials (RFC 6749 4.4)";
  }
  return "";
}

// DOT keeps them separated by spaces (its form splits on any
// whitespace); R22 decides which this server accepts: the others are
// dropped, each with a note.
void take_redirect_uris(const std::string& uris, DjangoApp& da) {
  Client& c = da.client;
  size_t pos = 0;
  while (pos < uris.size()) {
    size_t start = uris.find_first_not_of(" \t\r\n\f\v", pos);
    if (start == std::string::npos) break;
    size_t end = uris.find_first_of(" \t\r\n\f\v", start);
    if (end == std::string::npos) end = uris.size();
    std::string uri = uris.substr(start, end - start);
    pos = end;
    if (!valid_redirect_uri(uri)) {
      da.notes.push_back(app_label(c) + ": redirect URI " + quoted(uri) +
                         " dropped: not https, http to 127.0.0.1 or [::1], or a "
                         "private-use scheme like com.example.app:/cb (R22)");
      continue;
    }
    push_unique(c.redirect_uris, std::move(uri));
  }
  if (c.allows_grant("authorization_code") && c.redirect_uris.empty()) {
    da.notes.push_back(app_label(c) +
                       ": no redirect URI left: the authorization code "
                       "grant cannot be used until one is set");
  }
}

// A confidential client's secret as DOT kept it, stored hashed.
void take_secret(const std::string& secret, DjangoApp& da, unsigned iterations) {
  Client& c = da.client;
  if (is_password_hash(secret) && hash_iterations(secret) > max_imported_iterations(iterations)) {
    c.secret_hash = "!costly";
    da.notes.push_back(app_label(c) + ": its secret's hash has more PBKDF2 iterations than " +
                       std::to_string(max_imported_iterations(iterations)) +
                       ": the client cannot authenticate until it gets a new secret");
  } else if (is_password_hash(secret)) {
    c.secret_hash = secret;  // DOT 2+: Django's make_password()
    // its strength is unknown until it is verified (then a secret of
    // kStrongSecret characters or more is rehashed to the fast form)
    c.imported_secret = true;
  } else if (django_hash_prefix(secret) || secret.empty()) {
    std::string reason = hash_reason(secret);
    c.secret_hash = "!" + reason;
    da.notes.push_back(app_label(c) + ": its secret (" + reason +
                       ") cannot be verified here: the client cannot authenticate "
                       "until it gets a new secret");
  } else if (secret.size() >= kStrongSecret) {
    c.secret_hash = hash_secret(secret);  // DOT 1.x kept it in clear
  } else {
    // DOT generates 128 characters: a shorter one was chosen by hand, and
    // gets a password's hash and the per-client throttle (R16, R17)
    c.secret_hash = hash_password(secret, iterations);
    c.imported_secret = true;
  }
}

DjangoApp read_app(const Fields& f, unsigned iterations, Report* report) {
  DjangoApp da;
  Client& c = da.client;
  c.client_id = *f.str("client_id", true);
  c.name = f.str("name", false).value_or("");
  std::string type = *f.str("client_type", true);
  std::string grant = *f.str("authorization_grant_type", true);
  std::string secret = f.str("client_secret", false).value_or("");
  WipeOnExit wipe_secret(secret);
  std::string uris = f.str("redirect_uris", false).value_or("");
  c.created_at = f.time("created").value_or(static_cast<int64_t>(::time(nullptr)));
  std::string why = skip_reason(c, type, grant);
  if (!why.empty()) {
    report->warnings.push_back(app_label(c) + " skipped: " + why);
    da.importable = false;
    return da;
  }
  take_redirect_uris(uris, da);
  if (c.confidential) take_secret(secret, da, iterations);
  if (auto alg = f.str("algorithm", false); alg && !alg->empty()) {
    da.notes.push_back(app_label(c) + ": OpenID Connect (algorithm " + quoted(*alg) +
                       ") is not supported; imported for "
                       "OAuth 2");
  }
  return da;
}

// --------------------------------------------------------------- store

// The highest user id of the realm, 0 if it has no user.
uint64_t max_user_id(Txn& txn, const std::string& realm) {
  size_t total = 0;
  txn.list_users(realm, 0, 0, &total);
  if (total == 0) return 0;
  auto last = txn.list_users(realm, total - 1, 1, nullptr);
  if (last.empty()) throw std::runtime_error("cannot read the store's users");
  return last[0].id;
}

void import_users(Txn& txn, const std::string& realm, std::vector<DjangoUser>& users, Report* r) {
  const uint64_t floor = max_user_id(txn, realm);
  // a Django pk is kept only if the realm never handed it out: a deleted
  // user's id (its OpenID Connect sub, its JWTs' sub) goes to no one else
  const uint64_t seq = txn.user_seq(realm);
  std::vector<User*> keep_id, new_id;
  uint64_t target = 0;
  for (DjangoUser& du : users) {
    if (!du.importable) continue;
    User& u = du.user;
    u.realm = realm;
    if (txn.get_user_by_username(realm, u.username)) {
      r->existing_user.add(u.username);
      du.importable = false;
      continue;
    }
    if (du.pk && *du.pk > seq && !txn.get_user(realm, *du.pk)) {
      u.id = *du.pk;
      target = std::max(target, u.id);
      keep_id.push_back(&u);
    } else {
      if (du.pk) {
        r->pk_moved.add(u.username + " (" + std::to_string(*du.pk) + ")");
      }
      u.id = 0;
      new_id.push_back(&u);
    }
  }
  // an explicit id raises the store's id sequence (put_user), so ids
  // handed out later never land on an imported one; in ascending order,
  // as put_user takes no id at or below the sequence
  std::sort(keep_id.begin(), keep_id.end(),
            [](const User* a, const User* b) { return a->id < b->id; });
  for (User* u : keep_id) {
    if (txn.put_user(*u, true) != PutUser::kOk) {
      throw std::runtime_error("the store refused user " + u->username);
    }
  }
  for (User* u : new_id) {
    if (txn.put_user(*u, true) != PutUser::kOk || u->id <= std::max(floor, target)) {
      throw std::runtime_error("the store refused user " + u->username + "; nothing was imported");
    }
  }
  for (const DjangoUser& du : users) {
    if (!du.importable) continue;
    const std::string& name = du.user.username;
    r->users_imported++;
    if (du.trimmed) r->trimmed.add(name);
    if (du.email_dropped) r->bad_email.add(name);
    if (du.cheap_hash) r->cheap_hashes.add(name);
    if (!du.unusable.empty()) {
      r->unusable++;
      r->unusable_by_reason[du.unusable].add(name);
    }
  }
}

void import_apps(Txn& txn, const std::string& realm, std::vector<DjangoApp>& apps, Report* r) {
  for (DjangoApp& da : apps) {
    if (!da.importable) continue;
    da.client.realm = realm;
    if (txn.get_client(realm, da.client.client_id)) {
      r->existing_app.add(quoted(da.client.client_id));
      da.importable = false;
      continue;
    }
    if (!txn.put_client(da.client, true)) {
      throw std::runtime_error("the store refused " + app_label(da.client) +
                               "; nothing was imported");
    }
    r->apps_imported++;
    for (auto& note : da.notes) r->warnings.push_back(std::move(note));
  }
}

// ------------------------------------------------------------- command

void finish_warnings(Report* r, unsigned iterations) {
  std::vector<std::string>& w = r->warnings;
  auto add = [&w](const Tally& t, const std::string& one, const std::string& many) {
    if (t.n) w.push_back(t.text(one, many));
  };
  add(r->bad_username,
      "user skipped: its username is not 1 to 150 of ASCII letters, "
      "digits and @.+-_",
      "users skipped: their usernames are not 1 to 150 of ASCII letters, "
      "digits and @.+-_");
  add(r->existing_user, "user skipped: the username exists in the store (never overwritten)",
      "users skipped: the usernames exist in the store (never "
      "overwritten)");
  add(r->existing_app,
      "application skipped: the client_id exists in the store (never "
      "overwritten)",
      "applications skipped: the client_ids exist in the store (never "
      "overwritten)");
  add(r->pk_moved,
      "user got a new id: its Django id (in parentheses) is taken, or was a deleted user's",
      "users got new ids: their Django ids (in parentheses) are taken, or were deleted users'");
  add(r->trimmed,
      "user's first or last name was cut to 150 bytes or lost control "
      "characters",
      "users' first or last names were cut to 150 bytes or lost control "
      "characters");
  add(r->bad_email, "user's email was dropped: over 254 bytes or control characters",
      "users' emails were dropped: over 254 bytes or control characters");
  const std::string reset = ": a new password is needed (oauth2-admin user set-password)";
  for (const auto& [reason, tally] : r->unusable_by_reason) {
    if (reason == "unusable" || reason == "empty") {
      add(tally, "user had no usable password in Django" + reset,
          "users had no usable password in Django" + reset);
    } else if (reason == "unknown") {
      add(tally, "user's password is no Django password hash" + reset,
          "users' passwords are no Django password hashes" + reset);
    } else if (reason == "costly") {
      const std::string over = " more PBKDF2 iterations than " +
                               std::to_string(max_imported_iterations(iterations)) +
                               " (each wrong guess would cost as many)";
      add(tally, "user's password hash has" + over + reset,
          "users' password hashes have" + over + reset);
    } else {
      std::string why =
          ", which cannot be verified here (only "
          "pbkdf2_sha256 can)";
      add(tally, "user's password hash is " + reason + why + reset,
          "users' password hashes are " + reason + why + reset);
    }
  }
  std::string cost = std::to_string(iterations);
  add(r->cheap_hashes,
      "user's password hash has fewer than " + cost +
          " PBKDF2 iterations: it verifies, and is due for a rehash at the "
          "next login",
      "users' password hashes have fewer than " + cost +
          " PBKDF2 iterations: they verify, and are due for a rehash at "
          "the next login");
  for (const auto& [model, n] : r->ignored) {
    w.push_back(std::to_string(n) + (n == 1 ? " record of " : " records of ") + quoted(model) +
                " ignored");
  }
}

// The users and applications of the dump, each once; records of other
// models are counted in report->ignored.  BadDump on a malformed record.
void read_records(json_t* root, unsigned iterations, Report* report, std::vector<DjangoUser>* users,
                  std::vector<DjangoApp>* apps) {
  std::set<std::string> usernames, client_ids;
  std::set<uint64_t> pks;
  for (size_t i = 0; i < json_array_size(root); i++) {
    json_t* rec = json_array_get(root, i);
    if (!json_is_object(rec)) {
      throw BadDump("record " + std::to_string(i) + " is not an object");
    }
    json_t* model = json_object_get(rec, "model");
    if (!json_is_string(model)) {
      throw BadDump("record " + std::to_string(i) + ": \"model\" is missing or not a string");
    }
    std::string name = json_string_value(model);
    if (name != "auth.user" && name != "oauth2_provider.application") {
      report->ignored[name]++;
      continue;
    }
    json_t* fields = json_object_get(rec, "fields");
    Fields f(fields, i, name);
    if (!json_is_object(fields)) f.bad("\"fields\" is not an object");
    if (name == "auth.user") {
      users->push_back(read_user(f, rec, iterations, report));
      const DjangoUser& du = users->back();
      if (!usernames.insert(du.user.username).second) {
        f.bad("username " + quoted(du.user.username) + " given twice");
      }
      if (du.pk && !pks.insert(*du.pk).second) {
        f.bad("pk " + std::to_string(*du.pk) + " given twice");
      }
    } else {
      apps->push_back(read_app(f, iterations, report));
      if (!client_ids.insert(apps->back().client.client_id).second) {
        f.bad("client_id " + quoted(apps->back().client.client_id) + " given twice");
      }
    }
  }
}

// {"users": {imported, skipped, unusable_passwords}, "applications":
// {imported, skipped}, "warnings": [...]}
void print_report(const Report& report) {
  auto count = [](size_t n) { return json_integer(static_cast<json_int_t>(n)); };
  Json out(checked(json_object()));
  Json u(checked(json_object()));
  set_member(u.get(), "imported", count(report.users_imported));
  set_member(u.get(), "skipped", count(report.users_skipped));
  set_member(u.get(), "unusable_passwords", count(report.unusable));
  set_member(out.get(), "users", u.release());
  Json a(checked(json_object()));
  set_member(a.get(), "imported", count(report.apps_imported));
  set_member(a.get(), "skipped", count(report.apps_skipped));
  set_member(out.get(), "applications", a.release());
  set_member(out.get(), "warnings", strings_json(report.warnings));
  print_json(out.get());
}

int import_django(const Invocation& inv) {
  const unsigned iterations = pbkdf2_iterations_option(inv);
  const std::string& path = inv.operands[0];
  Report report;
  std::vector<DjangoUser> users;
  std::vector<DjangoApp> apps;
  try {
    std::string data = read_dump(path);
    Json root = parse_dump(data);
    wipe(data);  // DOT 1.x secrets in clear
    read_records(root.get(), iterations, &report, &users, &apps);
  } catch (const BadDump& e) {
    fprintf(stderr, "%s: %s: %s; nothing was imported\n", kProg,
            path == "-" ? "stdin" : quoted(path).c_str(), e.what());
    return kExitFailure;
  }

  {
    // import_users and import_apps mark the records they skip and fill the
    // report: each run of the change starts again from what the dump gave
    const Report found = std::move(report);
    const std::vector<DjangoUser> dump_users = std::move(users);
    const std::vector<DjangoApp> dump_apps = std::move(apps);
    auto store = open_store(inv, true);
    try {
      store->change([&](Txn& txn) {
        report = found;
        users = dump_users;
        apps = dump_apps;
        import_users(txn, inv.realm, users, &report);
        import_apps(txn, inv.realm, apps, &report);
        txn.commit();
      });
    } catch (const StoreError& e) {
      if (!e.is_too_large()) throw;
      // one transaction, and etcd's is bounded: the way in is a restore,
      // which goes in transactions etcd takes
      fprintf(stderr,
              "%s: %s; nothing was imported.  A dump this large goes into a cluster through "
              "a local store: import it there (--store <dir>, without --etcd), back that up "
              "(oauth2-admin --store <dir> backup <file>), then restore the file into the "
              "cluster (oauth2-admin --etcd <urls> restore <file>; a cluster that holds "
              "records is replaced only with --force)\n",
              kProg, e.what());
      return kExitFailure;
    }
  }
  for (const DjangoUser& du : users) report.users_skipped += !du.importable;
  for (const DjangoApp& da : apps) report.apps_skipped += !da.importable;
  finish_warnings(&report, iterations);
  print_report(report);
  return 0;
}

const OptionSpec kImportOptions[] = {
    {"pbkdf2-iterations", true, false},
};

const char kImportUsage[] =
    "usage: oauth2-admin import-django <dumpdata.json> "
    "[--pbkdf2-iterations <n>]\n"
    "\n"
    "Imports the users and applications of a Django site running\n"
    "django-oauth-toolkit, from\n"
    "\n"
    "    python manage.py dumpdata auth.user oauth2_provider.application\n"
    "\n"
    "(a file of at most 256 MiB, or - for stdin), in one transaction: on\n"
    "any error nothing is written.  Users keep their id when it is free,\n"
    "and their\n"
    "pbkdf2_sha256 password hash, so they log in with the password\n"
    "they had; other hashes (argon2, bcrypt, md5...) become\n"
    "unusable passwords, counted in the summary.  Client secrets are\n"
    "stored hashed, whether DOT kept them in clear (1.x) or hashed (2+).\n"
    "Grant types map to authorization_code or password (each with\n"
    "refresh_token) and client_credentials; implicit and openid-hybrid\n"
    "applications are skipped, and redirect URIs this server refuses are\n"
    "dropped, each with a warning.  Users and applications that exist in\n"
    "the store are skipped, never overwritten; other models are ignored.\n"
    "Prints {\"users\": {\"imported\", \"skipped\", \"unusable_passwords\"},\n"
    "\"applications\": {\"imported\", \"skipped\"}, \"warnings\": [...]}.\n"
    "\n"
    "  --pbkdf2-iterations <n>    the cost new passwords get (default\n"
    "                             600000): imported hashes below it are\n"
    "                             reported as due for a rehash\n";

const Command kImportCommands[] = {
    {"import-django", "<dumpdata.json>", "import users and applications from Django", kImportUsage,
     kImportOptions, std::size(kImportOptions), 1, 1, import_django},
};

}  // namespace

void add_import_commands(Commands& out) {
  for (const Command& c : kImportCommands) out.push_back(&c);
}

}  // namespace oauth2::admin
