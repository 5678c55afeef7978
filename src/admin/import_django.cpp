// oauth2-admin import-django: the users (auth.user, or the model
// --user-model names: a project's AUTH_USER_MODEL), applications, access
// tokens and refresh tokens (django-oauth-toolkit's oauth2_provider.*) of a
// Django site, from the output of `manage.py dumpdata`, in one change
// (Store::change): all of it or, on any error, nothing.
//
// Users keep their Django id when it is free and their pbkdf2_sha256
// password hash as it is, so they log in with the password they had;
// hashes of other algorithms cannot be verified here and become unusable.
// Client secrets are stored hashed whichever way DOT kept them: in clear
// (DOT 1.x: hashed here) or as a Django password hash (DOT 2+: kept, and
// verify_secret understands it).  Records that exist in the store are
// skipped, never overwritten; records of other models are ignored.
//
// Tokens become records of this store as the token endpoint writes them
// (keyed by token_id of the value: the store never holds a token in
// clear), for the application and user the import wrote from the same
// dump, never for a record it skipped or one the store held before.

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
#include "endpoint_util.hpp"
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
    // jansson's text without the input it quotes: a secret in clear
    // (DOT 1.x), which stderr and the logs it goes to never see
    std::string why = json_error_text(err);
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

// A foreign key: a pk (above 0), else a natural key.
struct Ref {
  uint64_t pk = 0;
  std::string key;
};

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

  std::optional<int64_t> time(const char* key, bool required = false) const {
    auto s = str(key, required);
    if (!s) return std::nullopt;
    auto t = parse_iso8601(*s);
    if (!t) bad(std::string("\"") + key + "\" is not an ISO 8601 date-time");
    return t;
  }

  // A foreign key as dumpdata writes it: the pk, or with --natural-foreign
  // the natural key, an array of one string (["<username>"],
  // ["<client_id>"]); nullopt when null or absent.
  std::optional<Ref> ref(const char* key) const {
    json_t* v = json_object_get(fields_, key);
    if (!v || json_is_null(v)) return std::nullopt;
    Ref r;
    if (json_is_integer(v) && json_integer_value(v) >= 1) {
      r.pk = static_cast<uint64_t>(json_integer_value(v));
      return r;
    }
    json_t* first = json_array_get(v, 0);
    if (json_array_size(v) != 1 || !json_is_string(first)) {
      bad(std::string("\"") + key + "\" is not a pk or a natural key");
    }
    r.key.assign(json_string_value(first), json_string_length(first));
    return r;
  }

  // A foreign key to a model without a natural key (DOT's tokens): a pk.
  std::optional<uint64_t> pk_ref(const char* key) const {
    auto r = ref(key);
    if (r && !r->pk) bad(std::string("\"") + key + "\" is not a pk");
    return r ? std::optional<uint64_t>(r->pk) : std::nullopt;
  }

  // Overwrites a string's bytes in the parsed dump (a token, once read).
  void wipe(const char* key) const { wipe_json_string(json_object_get(fields_, key)); }

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
  std::optional<uint64_t> pk;
  Client client;
  bool importable = true;
  std::vector<std::string> notes;
};

// An access token (oauth2_provider.accesstoken) or a refresh token
// (oauth2_provider.refreshtoken) as the dump gives it.  Its value is
// wiped with it, and never named in a message: the record's pk is.
struct DjangoToken {
  bool refresh = false;
  std::string label;  // "access token 12", "refresh token (record 40)"
  std::optional<uint64_t> pk;
  std::string value;
  std::optional<Ref> user, app;
  std::string scope;                  // access tokens: as DOT kept it
  int64_t created = 0;                // issued_at
  int64_t expires = 0;                // access tokens
  bool revoked = false;               // refresh tokens
  std::optional<uint64_t> access_pk;  // refresh: the access token it links
  std::optional<uint64_t> source_pk;  // access: the refresh token it came of

  DjangoToken() = default;
  DjangoToken(const DjangoToken&) = default;
  DjangoToken& operator=(const DjangoToken&) = default;
  ~DjangoToken() { wipe(value); }
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
  std::string user_model;                 // --user-model, lower case
  // tokens
  size_t access_imported = 0, refresh_imported = 0, tokens_skipped = 0;
  Tally expired, revoked, inactive, bad_value, bad_scope, no_app, no_user, existing_token;
  Tally clamped;  // imported, with the latest expiry the store takes
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

// The record's pk; nullopt without one (--natural-primary).  At most
// 2^53 - 1: a user's is its id here, a JSON number to every client (the
// API's "id", OpenID's sub), and the ids after it go on from it.
std::optional<uint64_t> read_pk(const Fields& f, json_t* record) {
  json_t* pk = json_object_get(record, "pk");
  if (!pk || json_is_null(pk)) return std::nullopt;
  if (!json_is_integer(pk) || json_integer_value(pk) < 1 ||
      json_integer_value(pk) > kMaxImportedPk) {
    f.bad("\"pk\" is not an integer from 1 to 2^53 - 1");
  }
  return static_cast<uint64_t>(json_integer_value(pk));
}

DjangoUser read_user(const Fields& f, json_t* record, unsigned iterations, Report* report) {
  DjangoUser du;
  User& u = du.user;
  du.pk = read_pk(f, record);
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

  // Django's validator, Unicode letters included ("josé"), as Unicode 14
  // has them (unicode_tables.inc; "Known limits"); no NFKC check:
  // Django stored the name normalized, and it stays the user's
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

DjangoApp read_app(const Fields& f, json_t* record, unsigned iterations, Report* report) {
  DjangoApp da;
  da.pk = read_pk(f, record);
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

// -------------------------------------------------------------- tokens

// The latest expiry an imported token keeps: 9999-12-31T23:59:59Z, the
// latest instant dumpdata writes in UTC (Python's datetime.max) and the
// latest this server writes as RFC 3339 (four-digit years).  The store's
// records hold 64-bit seconds: only an offset west of UTC on 9999-12-31
// reaches beyond it.
constexpr int64_t kMaxExpiry = 253402300799;

// When the import runs, and how long an imported refresh token lives
// (DOT keeps no expiry in its record: REFRESH_TOKEN_EXPIRE_SECONDS is a
// setting, None by default): --refresh-token-ttl from the import, as a
// refresh token issued then would have.
struct TokenClock {
  int64_t now = 0;
  int64_t refresh_ttl = 0;
};

constexpr int64_t kDefaultRefreshTtl = 30 * 86400;  // oauth2_refresh_token_ttl's default

DjangoToken read_token(const Fields& f, json_t* record, size_t index, bool refresh) {
  DjangoToken dt;
  dt.refresh = refresh;
  dt.pk = read_pk(f, record);
  dt.label = std::string(refresh ? "refresh token " : "access token ") +
             (dt.pk ? std::to_string(*dt.pk) : "(record " + std::to_string(index) + ")");
  dt.value = *f.str("token", true);
  f.wipe("token");
  dt.user = f.ref("user");
  dt.app = f.ref("application");
  dt.created = f.time("created").value_or(0);
  if (refresh) {
    dt.revoked = f.time("revoked").has_value();
    dt.access_pk = f.pk_ref("access_token");
  } else {
    dt.scope = f.str("scope", false).value_or("");
    dt.expires = *f.time("expires", true);
    dt.source_pk = f.pk_ref("source_refresh_token");
  }
  return dt;
}

// Whether a client could ever present the value here: an access token in
// a Bearer header (token68, R61), a refresh token in a form (visible
// ASCII), at most kMaxTokenLen bytes either.
bool usable_value(const DjangoToken& dt) {
  if (dt.value.empty() || dt.value.size() > detail::kMaxTokenLen) return false;
  return dt.refresh ? is_vschar(dt.value) : is_token68(dt.value);
}

// DOT's scope as DOT reads it (split on white space), in RFC 6749 3.3's
// form: each scope once, single spaces between; "" when that is no scope
// this server issues.
std::string normal_scope(const std::string& s) {
  std::vector<std::string> scopes;
  size_t pos = 0;
  while ((pos = s.find_first_not_of(" \t\r\n\f\v", pos)) != std::string::npos) {
    size_t end = std::min(s.find_first_of(" \t\r\n\f\v", pos), s.size());
    push_unique(scopes, s.substr(pos, end - pos));
    pos = end;
  }
  std::string out;
  for (const std::string& one : scopes) out += (out.empty() ? "" : " ") + one;
  return parse_scope(out, nullptr) ? out : "";
}

// The scopes of the dump's access tokens, for its refresh tokens: DOT's
// get_original_scopes takes the one of the access token a refresh token
// links, else the one of the access token made from it.
struct TokenScopes {
  std::map<uint64_t, std::string> by_pk, by_source;
};

TokenScopes token_scopes(const std::vector<DjangoToken>& tokens) {
  TokenScopes out;
  for (const DjangoToken& dt : tokens) {
    if (dt.refresh) continue;
    if (dt.pk) out.by_pk[*dt.pk] = dt.scope;
    if (dt.source_pk) out.by_source[*dt.source_pk] = dt.scope;
  }
  return out;
}

// A refresh token's scope: its access token's, else DOT's default scopes
// as it ships them ("read write", SCOPES and DEFAULT_SCOPES "__all__"),
// which are this server's default (oauth2_default_scope) too.
std::string refresh_scope(const DjangoToken& rt, const TokenScopes& scopes) {
  if (rt.access_pk) {
    if (auto it = scopes.by_pk.find(*rt.access_pk); it != scopes.by_pk.end()) return it->second;
  }
  if (rt.pk) {
    if (auto it = scopes.by_source.find(*rt.pk); it != scopes.by_source.end()) return it->second;
  }
  return "read write";
}

// The users and applications the import wrote, by their pk in the dump
// and by natural key: the only ones a token may belong to.
struct Imported {
  std::map<uint64_t, uint64_t> user_by_pk;
  std::map<std::string, uint64_t> user_by_name;
  std::set<uint64_t> inactive;                // users (their ids here) not is_active
  std::map<uint64_t, std::string> app_by_pk;  // pks the dump gives once
  std::set<std::string> client_ids;
};

Imported imported_records(const std::vector<DjangoUser>& users,
                          const std::vector<DjangoApp>& apps) {
  Imported m;
  for (const DjangoUser& du : users) {
    if (!du.importable) continue;
    if (du.pk) m.user_by_pk[*du.pk] = du.user.id;
    m.user_by_name[du.user.username] = du.user.id;
    if (!du.user.is_active) m.inactive.insert(du.user.id);
  }
  std::map<uint64_t, size_t> given;  // a pk given twice names no one
  for (const DjangoApp& da : apps) {
    if (da.pk) given[*da.pk]++;
  }
  for (const DjangoApp& da : apps) {
    if (!da.importable) continue;
    if (da.pk && given[*da.pk] == 1) m.app_by_pk[*da.pk] = da.client.client_id;
    m.client_ids.insert(da.client.client_id);
  }
  return m;
}

// t's client_id and user: the application and user the import wrote for
// the token's; false, counted, when it wrote none of them, or the user is
// inactive (a deactivated user's tokens are gone for good, R70: enabling
// the user again must not bring them to life).
bool token_owner(const DjangoToken& dt, const Imported& m, Token* t, Report* r) {
  if (dt.app && dt.app->pk) {
    if (auto it = m.app_by_pk.find(dt.app->pk); it != m.app_by_pk.end()) t->client_id = it->second;
  } else if (dt.app && m.client_ids.count(dt.app->key)) {
    t->client_id = dt.app->key;
  }
  if (t->client_id.empty()) {
    r->no_app.add(dt.label);
    return false;
  }
  if (!dt.user) return true;  // a client's own token (client_credentials)
  auto by_pk = m.user_by_pk.find(dt.user->pk);
  auto by_name = m.user_by_name.find(dt.user->key);
  if (dt.user->pk ? by_pk == m.user_by_pk.end() : by_name == m.user_by_name.end()) {
    r->no_user.add(dt.label);
    return false;
  }
  const uint64_t user = dt.user->pk ? by_pk->second : by_name->second;
  if (m.inactive.count(user)) {
    r->inactive.add(dt.label);
    return false;
  }
  t->user = std::to_string(user);
  return true;
}

// The record the token endpoint would have written for dt; nullopt,
// counted, for a token that is not imported.
std::optional<Token> token_record(const DjangoToken& dt, const Imported& m,
                                  const TokenScopes& scopes, const TokenClock& clock, Report* r) {
  if (dt.refresh ? dt.revoked : dt.expires <= clock.now) {
    (dt.refresh ? r->revoked : r->expired).add(dt.label);
    return std::nullopt;
  }
  if (!usable_value(dt)) {
    r->bad_value.add(dt.label);
    return std::nullopt;
  }
  Token t;
  if (!token_owner(dt, m, &t, r)) return std::nullopt;
  t.scope = normal_scope(dt.refresh ? refresh_scope(dt, scopes) : dt.scope);
  if (t.scope.empty()) {
    r->bad_scope.add(dt.label);
    return std::nullopt;
  }
  t.type = dt.refresh ? TokenType::kRefresh : TokenType::kAccess;
  t.issued_at = dt.created ? dt.created : clock.now;
  t.expires_at = dt.refresh ? detail::add_ttl(clock.now, clock.refresh_ttl) : dt.expires;
  if (t.expires_at > kMaxExpiry) {
    t.expires_at = kMaxExpiry;
    r->clamped.add(dt.label);
  }
  return t;
}

// The dump's tokens, refresh tokens first: each starts a grant family of
// its own, which the access token it links joins (revoking the one
// revokes the other, as in DOT; a reuse revokes both, R37).
void import_tokens(Txn& txn, const std::string& realm, const Imported& m,
                   const std::vector<DjangoToken>& tokens, const TokenClock& clock, Report* r) {
  const TokenScopes scopes = token_scopes(tokens);
  std::map<uint64_t, Family> families;  // access token pk: its grant's
  for (bool refresh : {true, false}) {
    for (const DjangoToken& dt : tokens) {
      if (dt.refresh != refresh) continue;
      std::optional<Token> t = token_record(dt, m, scopes, clock, r);
      if (t && refresh) t->family = detail::new_family();
      if (t && !refresh && dt.pk && families.count(*dt.pk)) t->family = families[*dt.pk];
      if (t && !txn.put_token(realm, token_id(dt.value), *t)) {
        r->existing_token.add(dt.label);
        t.reset();
      }
      if (!t) {
        r->tokens_skipped++;
        continue;
      }
      if (refresh && dt.access_pk) families[*dt.access_pk] = t->family;
      (refresh ? r->refresh_imported : r->access_imported)++;
    }
  }
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
  // the letters and digits of this release's tables (Python 3.11's):
  // Django on a newer Python takes letters of Unicode 15 and 15.1 too
  add(r->bad_username,
      "user skipped: its username is not 1 to 150 of letters, digits and "
      "@.+-_ in Unicode 14, the version this release knows (a newer "
      "Python's Django may take it)",
      "users skipped: their usernames are not 1 to 150 of letters, digits "
      "and @.+-_ in Unicode 14, the version this release knows (a newer "
      "Python's Django may take them)");
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
}

// Whether s is a model's label as AUTH_USER_MODEL names it: <app_label>.
// <model>, each a Python identifier.
bool model_label(std::string_view s) {
  auto identifier = [](std::string_view p) {
    return !p.empty() && !(p[0] >= '0' && p[0] <= '9') &&
           std::all_of(p.begin(), p.end(), [](char ch) {
             return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_';
           });
  };
  size_t dot = s.find('.');
  return s.size() <= 200 && dot != std::string_view::npos && identifier(s.substr(0, dot)) &&
         identifier(s.substr(dot + 1));
}

std::string ascii_lower(std::string s) {
  for (char& ch : s) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return s;
}

// The ignored models, and a hint for the one that may be the project's
// user model.
void ignored_warnings(Report* r) {
  for (const auto& [model, n] : r->ignored) {
    std::string w =
        std::to_string(n) + (n == 1 ? " record of " : " records of ") + quoted(model) + " ignored";
    const std::string_view suffix = ".user";
    if (model_label(model) && model.size() > suffix.size() &&
        ascii_lower(model.substr(model.size() - suffix.size())) == suffix) {
      w += ": if it is the project's AUTH_USER_MODEL, give --user-model " + model;
    }
    r->warnings.push_back(std::move(w));
  }
}

void token_warnings(Report* r) {
  std::vector<std::string>& w = r->warnings;
  auto add = [&w](const Tally& t, const std::string& one, const std::string& many) {
    if (t.n) w.push_back(t.text(one, many));
  };
  add(r->expired, "access token skipped: expired", "access tokens skipped: expired");
  add(r->revoked, "refresh token skipped: revoked", "refresh tokens skipped: revoked");
  add(r->inactive, "token skipped: its user is inactive (enabling the user never brings it back)",
      "tokens skipped: their users are inactive (enabling the users never brings them back)");
  const std::string value =
      " empty, over 4096 bytes, or none a client can present here (an access token: token68, "
      "RFC 6750 2.1; a refresh token: visible ASCII)";
  add(r->bad_value, "token skipped: its value is" + value,
      "tokens skipped: their values are" + value);
  add(r->bad_scope, "token skipped: it has no scope of RFC 6749 3.3",
      "tokens skipped: they have no scope of RFC 6749 3.3");
  const std::string never = " (skipped, or not in the dump): never given to another";
  add(r->no_app, "token skipped: its application was not imported" + never,
      "tokens skipped: their applications were not imported" + never);
  add(r->no_user, "token skipped: its user was not imported" + never,
      "tokens skipped: their users were not imported" + never);
  add(r->existing_token, "token skipped: the store holds that token already (never overwritten)",
      "tokens skipped: the store holds those tokens already (never overwritten)");
  add(r->clamped,
      "access token expires after 9999-12-31T23:59:59Z, the latest this server keeps: it "
      "expires then",
      "access tokens expire after 9999-12-31T23:59:59Z, the latest this server keeps: they "
      "expire then");
}

// What the dump holds, each once.
struct Dump {
  std::vector<DjangoUser> users;
  std::vector<DjangoApp> apps;
  std::vector<DjangoToken> tokens;
};

enum class Kind { kOther, kUser, kApp, kAccess, kRefresh };

Kind kind_of(const std::string& model, const std::string& user_model) {
  if (ascii_lower(model) == user_model) return Kind::kUser;
  if (model == "oauth2_provider.application") return Kind::kApp;
  if (model == "oauth2_provider.accesstoken") return Kind::kAccess;
  if (model == "oauth2_provider.refreshtoken") return Kind::kRefresh;
  return Kind::kOther;
}

// What a dump may give only once: usernames, user pks, client_ids, and
// the values (their SHA-256) of access tokens and live refresh tokens,
// which DOT keeps unique and the store keys alike.
struct Given {
  std::set<std::string> usernames, client_ids;
  std::set<uint64_t> pks;
  std::set<Digest> tokens;
};

void read_record(const Fields& f, json_t* rec, size_t i, Kind kind, unsigned iterations,
                 Report* report, Dump* dump, Given* given) {
  if (kind == Kind::kUser) {
    dump->users.push_back(read_user(f, rec, iterations, report));
    const DjangoUser& du = dump->users.back();
    if (!given->usernames.insert(du.user.username).second) {
      f.bad("username " + quoted(du.user.username) + " given twice");
    }
    if (du.pk && !given->pks.insert(*du.pk).second) {
      f.bad("pk " + std::to_string(*du.pk) + " given twice");
    }
  } else if (kind == Kind::kApp) {
    dump->apps.push_back(read_app(f, rec, iterations, report));
    if (!given->client_ids.insert(dump->apps.back().client.client_id).second) {
      f.bad("client_id " + quoted(dump->apps.back().client.client_id) + " given twice");
    }
  } else {
    dump->tokens.push_back(read_token(f, rec, i, kind == Kind::kRefresh));
    const DjangoToken& dt = dump->tokens.back();
    if (!dt.revoked && !given->tokens.insert(sha256(dt.value)).second) {
      f.bad("the token of an earlier access or refresh token given again");
    }
  }
}

// The users (of report->user_model), applications and tokens of the
// dump; records of other models are counted in report->ignored.  BadDump
// on a malformed record.
void read_records(json_t* root, unsigned iterations, Report* report, Dump* dump) {
  Given given;
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
    const Kind kind = kind_of(name, report->user_model);
    if (kind == Kind::kOther) {
      report->ignored[name]++;
      continue;
    }
    json_t* fields = json_object_get(rec, "fields");
    Fields f(fields, i, name);
    if (!json_is_object(fields)) f.bad("\"fields\" is not an object");
    read_record(f, rec, i, kind, iterations, report, dump, &given);
  }
}

// {"users": {imported, skipped, unusable_passwords}, "applications":
// {imported, skipped}, "tokens": {imported, skipped, access_tokens,
// refresh_tokens, expired, revoked, inactive_user}, "warnings": [...]}
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
  Json t(checked(json_object()));
  set_member(t.get(), "imported", count(report.access_imported + report.refresh_imported));
  set_member(t.get(), "skipped", count(report.tokens_skipped));
  set_member(t.get(), "access_tokens", count(report.access_imported));
  set_member(t.get(), "refresh_tokens", count(report.refresh_imported));
  set_member(t.get(), "expired", count(report.expired.n));
  set_member(t.get(), "revoked", count(report.revoked.n));
  set_member(t.get(), "inactive_user", count(report.inactive.n));
  set_member(out.get(), "tokens", t.release());
  set_member(out.get(), "warnings", strings_json(report.warnings));
  print_json(out.get());
}

// --user-model: the label of the project's AUTH_USER_MODEL ("users.User"),
// in lower case as dumpdata writes it; "auth.user" without it.
std::string user_model_option(const Invocation& inv) {
  auto v = inv.value("user-model");
  if (!v) return "auth.user";
  if (!model_label(*v)) {
    throw UsageError("--user-model: " + quoted(*v) +
                     " is not <app_label>.<model> (the project's AUTH_USER_MODEL, "
                     "e.g. users.User)");
  }
  return ascii_lower(*v);
}

// Writes the dump in one change.  import_users, import_apps and
// import_tokens mark the records they skip and fill the report: each run
// of the change starts again from what the dump gave.
int import_dump(const Invocation& inv, const Dump& dump, const TokenClock& clock, Report* report,
                Dump* done) {
  const Report found = *report;
  auto store = open_store(inv, true);
  try {
    store->change([&](Txn& txn) {
      *report = found;
      *done = dump;
      import_users(txn, inv.realm, done->users, report);
      import_apps(txn, inv.realm, done->apps, report);
      import_tokens(txn, inv.realm, imported_records(done->users, done->apps), done->tokens, clock,
                    report);
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
  return 0;
}

int import_django(const Invocation& inv) {
  const unsigned iterations = pbkdf2_iterations_option(inv);
  TokenClock clock;
  clock.refresh_ttl = ttl_option(inv, "refresh-token-ttl").value_or(kDefaultRefreshTtl);
  const std::string& path = inv.operands[0];
  Report report;
  report.user_model = user_model_option(inv);
  Dump dump;
  try {
    std::string data = read_dump(path);
    Json root = parse_dump(data);
    wipe(data);  // DOT 1.x secrets in clear, tokens
    read_records(root.get(), iterations, &report, &dump);
  } catch (const BadDump& e) {
    fprintf(stderr, "%s: %s: %s; nothing was imported\n", kProg,
            path == "-" ? "stdin" : quoted(path).c_str(), e.what());
    return kExitFailure;
  }
  clock.now = static_cast<int64_t>(::time(nullptr));
  Dump done;
  if (int rc = import_dump(inv, dump, clock, &report, &done)) return rc;
  for (const DjangoUser& du : done.users) report.users_skipped += !du.importable;
  for (const DjangoApp& da : done.apps) report.apps_skipped += !da.importable;
  finish_warnings(&report, iterations);
  ignored_warnings(&report);
  token_warnings(&report);
  print_report(report);
  return 0;
}

const OptionSpec kImportOptions[] = {
    {"pbkdf2-iterations", true, false},
    {"user-model", true, false},
    {"refresh-token-ttl", true, false},
};

const char kImportUsage[] =
    "usage: oauth2-admin import-django <dumpdata.json> [--user-model <app_label.model>]\n"
    "           [--refresh-token-ttl <seconds>] [--pbkdf2-iterations <n>]\n"
    "\n"
    "Imports the users, applications and tokens of a Django site running\n"
    "django-oauth-toolkit, from\n"
    "\n"
    "    python manage.py dumpdata auth.user oauth2_provider.application \\\n"
    "        oauth2_provider.accesstoken oauth2_provider.refreshtoken\n"
    "\n"
    "(with a custom AUTH_USER_MODEL, its label in place of auth.user, and\n"
    "--user-model; a file of at most 256 MiB, or - for stdin), in one\n"
    "transaction: on any error nothing is written.  Users keep their id\n"
    "when it is free, and their\n"
    "pbkdf2_sha256 password hash, so they log in with the password\n"
    "they had; other hashes (argon2, bcrypt, md5...) become\n"
    "unusable passwords, counted in the summary.  Client secrets are\n"
    "stored hashed, whether DOT kept them in clear (1.x) or hashed (2+).\n"
    "Grant types map to authorization_code or password (each with\n"
    "refresh_token) and client_credentials; implicit and openid-hybrid\n"
    "applications are skipped, and redirect URIs this server refuses are\n"
    "dropped, each with a warning.  Users and applications that exist in\n"
    "the store are skipped, never overwritten; other models are ignored.\n"
    "Access tokens that have not expired and refresh tokens that are not\n"
    "revoked keep working as tokens of this server (stored hashed), with\n"
    "their application, user and scope, if the import wrote that\n"
    "application and user, and the user is active (an inactive user's\n"
    "tokens never come back, as deactivation's); others are skipped,\n"
    "counted in the summary.\n"
    "Prints {\"users\": {\"imported\", \"skipped\", \"unusable_passwords\"},\n"
    "\"applications\": {\"imported\", \"skipped\"}, \"tokens\": {\"imported\",\n"
    "\"skipped\", \"access_tokens\", \"refresh_tokens\", \"expired\",\n"
    "\"revoked\", \"inactive_user\"}, \"warnings\": [...]}.\n"
    "\n"
    "  --user-model <app_label.model>\n"
    "                             the project's AUTH_USER_MODEL (default\n"
    "                             auth.user; any case): its records are\n"
    "                             read as auth.user's\n"
    "  --refresh-token-ttl <seconds>\n"
    "                             how long imported refresh tokens live\n"
    "                             from the import, 1 to 315360000 (default\n"
    "                             2592000, oauth2_refresh_token_ttl's):\n"
    "                             DOT keeps no expiry in the record\n"
    "  --pbkdf2-iterations <n>    the cost new passwords get (default\n"
    "                             600000): imported hashes below it are\n"
    "                             reported as due for a rehash\n";

const Command kImportCommands[] = {
    {"import-django", "<dumpdata.json>", "import users, applications and tokens from Django",
     kImportUsage, kImportOptions, std::size(kImportOptions), 1, 1, import_django},
};

}  // namespace

void add_import_commands(Commands& out) {
  for (const Command& c : kImportCommands) out.push_back(&c);
}

}  // namespace oauth2::admin
