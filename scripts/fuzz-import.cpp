// libFuzzer harness for `oauth2-admin import-django`
// (src/admin/import_django.cpp, compiled into this file for its anonymous
// namespace): the dates a dump's records carry (parse_iso8601), and whole
// dumps read and imported (the dumpdata reader, the conversions of
// users, applications, access and refresh tokens) into a real store on
// /dev/shm.  Each input is one of:
//   - a date, raw: the input's bytes;
//   - a date as Django's JSON encoder writes one (DjangoJSONEncoder:
//     datetime.isoformat(), microseconds cut to milliseconds, +00:00 as
//     Z, naive when USE_TZ is off), from a year, month, ... and offset
//     the input gives;
//   - a dump the harness writes from records the input makes (users,
//     applications, tokens and other models, each field valid, fuzzed,
//     of a wrong type or absent; dates of both kinds above), sometimes
//     cut short or with a byte changed;
//   - a dump, raw: the input's bytes.
// Every import starts from the same store (one user, one application and
// its token, imported at start-up).  Beyond "no crash" (ASan, UBSan), it
// aborts when:
//   - a date of the known table (Python 3.11's datetime.fromisoformat
//     made it, scripts/fuzz-import writes it as seeds too) is not read
//     as Python reads it: one of Django's forms refused or read as
//     another instant, one Python accepts read as another instant, one
//     Python refuses accepted;
//   - a date of Django's form is not the instant glibc's timegm() makes
//     of its fields, less its offset;
//   - a raw date accepted reads as another instant once written another
//     way Python reads alike (a space for the T, a fraction dropped,
//     +00:00 for Z, a naive one with Z);
//   - an import that fails (exit status 1, or what main() reports)
//     changed the store, or one throws what is not a runtime_error (a
//     logic_error: a bug, not bad input);
//   - an import that succeeds leaves a record the store's readers
//     (list_users, get_user, list_clients, get_token) cannot read.
// Build and run with scripts/fuzz-import.

#include <fcntl.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../src/admin/import_django.cpp"
#include "store_records.hpp"
#define FUZZ_HARNESS "fuzz-import"
#include "fuzz-harness.hpp"

namespace {

using oauth2::Db;
using oauth2::kDbCount;
using oauth2::Store;
using oauth2::admin::parse_iso8601;

using fuzz::broken;
using fuzz::die;

// ---------------------------------------------------------- dates

// Known pairs, from Python 3.11: int of the seconds from the epoch of
// datetime.fromisoformat(s) (a naive one taken as UTC, as the import
// takes it), floored.  django: a form DjangoJSONEncoder writes (read, and
// as Python reads it); python: Python reads it (if read, as Python
// does); refused: Python refuses it (so must the import).
enum class Known { kDjango, kPython, kRefused };
struct KnownDate {
  const char* text;
  Known kind;
  int64_t seconds;
};
const KnownDate kKnown[] = {
    {"1970-01-01T00:00:00Z", Known::kDjango, 0},
    {"1970-01-01T00:00:00", Known::kDjango, 0},
    {"1969-12-31T23:59:59.999Z", Known::kDjango, -1},
    {"0001-01-01T00:00:00Z", Known::kDjango, -62135596800},
    {"0001-01-01T00:00:00+01:00", Known::kDjango, -62135600400},
    {"0001-01-01T00:00:00-23:59", Known::kDjango, -62135510460},
    {"9999-12-31T23:59:59.999Z", Known::kDjango, 253402300799},
    {"9999-12-31T23:59:59-23:59", Known::kDjango, 253402387139},
    {"9999-12-31T23:59:59+14:00", Known::kDjango, 253402250399},
    {"2024-02-29T12:00:00.500+05:30", Known::kDjango, 1709188200},
    {"2023-02-28T23:59:59Z", Known::kDjango, 1677628799},
    {"2000-02-29T00:00:00Z", Known::kDjango, 951782400},
    {"1900-02-28T00:00:00Z", Known::kDjango, -2203977600},
    {"2100-03-01T00:00:00-01:00", Known::kDjango, 4107546000},
    {"2024-05-01T10:20:30.123Z", Known::kDjango, 1714558830},
    {"2024-05-01T10:20:30", Known::kDjango, 1714558830},
    {"2024-05-01T10:20:30.5+00:30", Known::kPython, 1714557030},
    {"1600-02-29T06:07:08+12:45", Known::kDjango, -11671022272},
    {"2024-05-01T10:20:30.123456", Known::kPython, 1714558830},
    {"2024-05-01 10:20:30", Known::kPython, 1714558830},
    {"2024-05-01T10:20", Known::kPython, 1714558800},
    {"2024-05-01T10:20Z", Known::kPython, 1714558800},
    {"2024-05-01T10:20:30+0530", Known::kPython, 1714539030},
    {"2024-05-01T10:20:30-00:00", Known::kPython, 1714558830},
    {"2024-05-01T10:20:30,5Z", Known::kPython, 1714558830},
    {"2024-05-01T10:20:30+05:30:15", Known::kPython, 1714539015},
    {"2024-05-01T10:20:30.123456789Z", Known::kPython, 1714558830},
    {"2024-05-01", Known::kPython, 1714521600},
    {"2024-05-01T10:20:30.Z", Known::kPython, 1714558830},
    {"2024-05-01T10:20:30+05", Known::kPython, 1714540830},
    {"2023-02-29T00:00:00Z", Known::kRefused, 0},
    {"2024-05-01T24:00:00Z", Known::kRefused, 0},
    {"2024-05-01T10:20:60Z", Known::kRefused, 0},
    {"2024-13-01T00:00:00Z", Known::kRefused, 0},
    {"2024-05-01T10:20:30+24:00", Known::kRefused, 0},
    {"0000-12-31T00:00:00Z", Known::kRefused, 0},
    {"2024-04-31T00:00:00Z", Known::kRefused, 0},
    {"2024-05-01T1:20:30Z", Known::kRefused, 0},
};

void check_known() {
  for (const KnownDate& k : kKnown) {
    const auto got = parse_iso8601(k.text);
    const std::string what =
        std::string(k.text) + " read as " + (got ? std::to_string(*got) : std::string("refused")) +
        ", Python: " + (k.kind == Known::kRefused ? "refused" : std::to_string(k.seconds));
    if (k.kind == Known::kRefused ? got.has_value()
                                  : (got ? *got != k.seconds : k.kind == Known::kDjango)) {
      broken("a known date not read as Python reads it", what);
    }
  }
}

// The date DjangoJSONEncoder writes for the fields, and its instant by
// glibc's timegm() (the oracle: another implementation than the import's).
std::pair<std::string, int64_t> django_date(FuzzedDataProvider& in) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  struct tm t = {};
  const int y = in.ConsumeIntegralInRange(1, 9999);
  const int mo = in.ConsumeIntegralInRange(1, 12);
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  const int d = in.ConsumeIntegralInRange(1, kDays[mo - 1] + (mo == 2 && leap));
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = in.ConsumeIntegralInRange(0, 23);
  t.tm_min = in.ConsumeIntegralInRange(0, 59);
  t.tm_sec = in.ConsumeIntegralInRange(0, 59);
  const int micro = in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange(0, 999999);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d, t.tm_hour, t.tm_min,
                t.tm_sec);
  std::string s = buf;
  if (micro) {  // isoformat's 6 digits, cut to 3
    std::snprintf(buf, sizeof(buf), ".%03d", micro / 1000);
    s += buf;
  }
  int64_t offset = 0;
  const int tz = in.ConsumeIntegralInRange(0, 2);  // naive, UTC, an offset
  if (tz == 1) s += "Z";
  if (tz == 2) {
    const int minutes = in.ConsumeIntegralInRange(-(23 * 60 + 59), 23 * 60 + 59);
    offset = minutes * 60;
    if (minutes == 0) {
      s += "Z";
    } else {
      std::snprintf(buf, sizeof(buf), "%c%02d:%02d", minutes < 0 ? '-' : '+',
                    std::abs(minutes) / 60, std::abs(minutes) % 60);
      s += buf;
    }
  }
  return {s, static_cast<int64_t>(timegm(&t)) - offset};
}

// A raw date accepted must read alike written the other ways Python
// reads alike.
void check_raw_date(const std::string& s) {
  const auto v = parse_iso8601(s);
  if (!v) return;
  if (*v < -62135596800 - 86400 || *v > 253402300799 + 86400) {
    broken("a date read beyond the years 1 to 9999", s);
  }
  auto same = [&](const std::string& other, const char* how) {
    const auto w = parse_iso8601(other);
    if (w && *w != *v) broken(how, s + " -> " + std::to_string(*v) + ", " + other);
  };
  if (s.size() > 10 && (s[10] == 'T' || s[10] == ' ')) {
    std::string o = s;
    o[10] = s[10] == 'T' ? ' ' : 'T';
    same(o, "a space for the T reads as another instant");
  }
  if (size_t dot = s.find_first_of(".,", 17); dot != std::string::npos) {
    size_t end = dot + 1;
    while (end < s.size() && s[end] >= '0' && s[end] <= '9') end++;
    same(s.substr(0, dot) + s.substr(end), "the fraction dropped reads as another instant");
  }
  if (!s.empty() && s.back() == 'Z') {
    same(s.substr(0, s.size() - 1) + "+00:00", "+00:00 for Z reads as another instant");
  } else if (!s.empty() && s.back() >= '0' && s.back() <= '9' && s.size() <= 26) {
    same(s + "Z", "a naive date with Z reads as another instant");
  }
}

// ---------------------------------------------------------- the store

std::string g_dir;       // the work directory
std::string g_template;  // the store every import starts from
std::string g_store;     // the store imported into
std::string g_dump;      // the dump's file

using Records = std::map<std::pair<int, std::string>, std::string>;

Records read_records_of(const std::string& path) {
  Store store(path, 0);
  Records out;
  oauth2::Txn t = store.read();
  for (size_t i = 0; i < kDbCount; i++) {
    const Db db = static_cast<Db>(i);
    t.scan(db, "", 0, false, [&](std::string_view k, std::string_view v) {
      // the map size recorded by whichever process opened it last
      if (db != Db::kMeta || k != oauth2::kMapSizeMeta) out[{int(i), std::string(k)}] = v;
      return true;
    });
  }
  return out;
}

// What the store's readers make of every user, application and token.
void read_back(const std::string& path) {
  Store store(path, 0);
  oauth2::Txn t = store.read();
  try {
    size_t total = 0;
    for (const oauth2::User& u : t.list_users(oauth2::kDefaultRealm, 0, 100000, &total)) {
      t.get_user(oauth2::kDefaultRealm, u.id);
      t.get_user_by_username(oauth2::kDefaultRealm, u.username);
    }
    for (const oauth2::Client& c : t.list_clients(oauth2::kDefaultRealm)) {
      t.get_client(oauth2::kDefaultRealm, c.client_id);
    }
    t.scan(Db::kTokens, "", 0, false, [&](std::string_view k, std::string_view) {
      std::string_view realm;
      oauth2::TokenId id;
      if (oauth2::records::split_token_key(k, &realm, &id) && !t.get_token(realm, id)) {
        broken("an imported token does not read");
      }
      return true;
    });
  } catch (const std::exception& e) {
    broken("an imported record does not read", e.what());
  }
}

void copy_file(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  out << in.rdbuf();
  if (!in || !out) die("cannot copy " + from + " to " + to);
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) die("cannot write " + path);
}

Records* g_template_records;

struct Stats {
  unsigned long raw_dates = 0, raw_dates_read = 0, django_dates = 0;
  unsigned long dumps = 0, raw_dumps = 0, imported = 0, refused = 0, thrown = 0;
};
Stats* g_stats;

void print_stats() {
  const Stats& s = *g_stats;
  std::fprintf(stderr,
               "fuzz-import: dates: %lu raw (%lu read), %lu of Django's form; dumps: %lu made, %lu "
               "raw; imports: %lu done, %lu refused (exit 1), %lu thrown\n",
               s.raw_dates, s.raw_dates_read, s.django_dates, s.dumps, s.raw_dumps, s.imported,
               s.refused, s.thrown);
}

// Runs the import of g_dump into g_store, as main() would, and checks it.
void import_and_check(const std::vector<std::pair<std::string, std::string>>& options) {
  oauth2::admin::Invocation inv;
  inv.store = g_store;
  inv.operands = {g_dump};
  inv.options = options;
  inv.options.emplace_back("pbkdf2-iterations", "1000");
  int rc;
  try {
    rc = oauth2::admin::import_django(inv);
  } catch (const std::runtime_error&) {
    rc = -1;  // main() reports it: exit 1
  } catch (const std::exception& e) {
    broken("the import threw what is not a runtime_error", e.what());
  }
  if (g_stats) (rc == 0 ? g_stats->imported : rc > 0 ? g_stats->refused : g_stats->thrown)++;
  if (rc != 0) {
    if (read_records_of(g_store) != *g_template_records) {
      broken("an import that failed changed the store");
    }
    return;
  }
  read_back(g_store);
  copy_file(g_template + "/data.mdb", g_store + "/data.mdb");
}

// ---------------------------------------------------------- dumps

json_t* text_of(const std::string& s) {
  json_t* j = json_stringn(s.data(), s.size());
  return j ? j : json_string("not UTF-8");
}

// A field's value: the valid one, another string, another type, or none
// (nullptr: the field left out).
json_t* field(FuzzedDataProvider& in, json_t* valid) {
  switch (in.ConsumeIntegralInRange(0, 9)) {
    case 0: json_decref(valid); return nullptr;
    case 1: json_decref(valid); return json_null();
    case 2: json_decref(valid); return text_of(in.ConsumeRandomLengthString(40));
    case 3: json_decref(valid); return json_integer(in.ConsumeIntegral<int64_t>());
    case 4: json_decref(valid); return json_pack("[s]", "x");
    case 5: json_decref(valid); return in.ConsumeBool() ? json_true() : json_real(1.5);
    default: return valid;
  }
}

json_t* date_value(FuzzedDataProvider& in) {
  if (in.ConsumeIntegralInRange(0, 3) == 3) return text_of(in.ConsumeRandomLengthString(32));
  return text_of(django_date(in).first);
}

json_t* ref_value(FuzzedDataProvider& in, const char* natural) {
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0: return json_integer(in.ConsumeIntegralInRange<json_int_t>(1, 4));
    case 1: return json_pack("[s]", natural);
    case 2: return json_integer(in.ConsumeIntegral<int64_t>());
    default: return json_pack("[s,s]", natural, natural);
  }
}

const char* const kUsernames[] = {"alice", "bob", "taken", "a b", ""};
const char* const kClientIds[] = {"app1", "app2", "existing-client", "12", "bad id"};
const char* const kTokens[] = {"tok1", "tok2", "tok3", "existing-token", "a b"};

json_t* make_record(FuzzedDataProvider& in) {
  static const char* const kModels[] = {"auth.user",
                                        "oauth2_provider.application",
                                        "oauth2_provider.accesstoken",
                                        "oauth2_provider.refreshtoken",
                                        "sessions.session",
                                        "users.user"};
  const int kind = in.ConsumeIntegralInRange(0, 5);
  json_t* rec = json_object();
  json_object_set_new(rec, "model", json_string(kModels[kind]));
  if (json_t* pk = field(in, json_integer(in.ConsumeIntegralInRange<json_int_t>(1, 4)))) {
    json_object_set_new(rec, "pk", pk);
  }
  json_t* f = json_object();
  auto set = [&](const char* name, json_t* valid) {
    if (json_t* v = field(in, valid)) json_object_set_new(f, name, v);
  };
  switch (kind) {
    case 0:
    case 5:
      set("username", json_string(kUsernames[in.ConsumeIntegralInRange(0, 4)]));
      set("password", json_string(in.ConsumeBool() ? "pbkdf2_sha256$1000$salt$"
                                                     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
                                                   : "argon2$argon2id$v=19$m=1,t=1,p=1$x$y"));
      set("email", text_of(in.ConsumeRandomLengthString(30)));
      set("first_name", text_of(in.ConsumeRandomLengthString(20)));
      set("last_name", text_of(in.ConsumeRandomLengthString(20)));
      set("is_staff", json_boolean(in.ConsumeBool()));
      set("is_superuser", json_boolean(in.ConsumeBool()));
      set("is_active", json_boolean(in.ConsumeBool()));
      set("date_joined", date_value(in));
      set("last_login", date_value(in));
      break;
    case 1:
      set("client_id", json_string(kClientIds[in.ConsumeIntegralInRange(0, 4)]));
      set("name", text_of(in.ConsumeRandomLengthString(20)));
      set("client_type", json_string(in.ConsumeBool() ? "confidential" : "public"));
      set("authorization_grant_type",
          json_string(in.ConsumeBool() ? "authorization-code" : "client-credentials"));
      set("client_secret", text_of(in.ConsumeRandomLengthString(40)));
      set("redirect_uris", json_string("https://example.com/cb http://127.0.0.1/x"));
      set("created", date_value(in));
      set("algorithm", json_string(in.ConsumeBool() ? "" : "RS256"));
      break;
    case 2:
    case 3:
      set("token", json_string(kTokens[in.ConsumeIntegralInRange(0, 4)]));
      set("user", ref_value(in, kUsernames[in.ConsumeIntegralInRange(0, 4)]));
      set("application", ref_value(in, kClientIds[in.ConsumeIntegralInRange(0, 4)]));
      set("created", date_value(in));
      if (kind == 2) {
        set("scope", json_string(in.ConsumeBool() ? "read write" : "read\tread  x"));
        set("expires", date_value(in));
        set("source_refresh_token", json_integer(in.ConsumeIntegralInRange(1, 4)));
      } else {
        set("revoked", in.ConsumeBool() ? json_null() : date_value(in));
        set("access_token", json_integer(in.ConsumeIntegralInRange(1, 4)));
      }
      break;
    default: set("session_data", json_string("x")); break;
  }
  if (in.ConsumeIntegralInRange(0, 15) == 15) {
    json_decref(f);
    f = json_integer(1);
  }
  json_object_set_new(rec, "fields", f);
  return rec;
}

std::string make_dump(FuzzedDataProvider& in) {
  oauth2::Json root(json_array());
  const size_t n = in.ConsumeIntegralInRange(0, 8);
  for (size_t i = 0; i < n; i++) json_array_append_new(root.get(), make_record(in));
  std::string text = oauth2::json_text(root.get(), JSON_INDENT(2));
  switch (in.ConsumeIntegralInRange(0, 7)) {
    case 0: text.resize(in.ConsumeIntegralInRange<size_t>(0, text.size())); break;
    case 1:
      if (!text.empty()) {
        text[in.ConsumeIntegralInRange<size_t>(0, text.size() - 1)] =
            static_cast<char>(in.ConsumeIntegral<uint8_t>());
      }
      break;
    default: break;
  }
  return text;
}

// The store every import starts from: a user, an application and its
// token, imported as any dump is.
void make_template() {
  const std::string seed = R"([
 {"model": "auth.user", "pk": 3, "fields": {"username": "taken", "password":
  "pbkdf2_sha256$1000$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
  "date_joined": "2020-01-01T00:00:00Z"}},
 {"model": "oauth2_provider.application", "pk": 4, "fields": {"client_id": "existing-client",
  "name": "e", "client_type": "public", "authorization_grant_type": "authorization-code",
  "redirect_uris": "https://example.com/cb"}},
 {"model": "oauth2_provider.accesstoken", "pk": 5, "fields": {"token": "existing-token",
  "user": 3, "application": 4, "scope": "read", "expires": "2999-01-01T00:00:00Z"}}
])";
  write_file(g_dump, seed);
  oauth2::admin::Invocation inv;
  inv.store = g_template;
  inv.operands = {g_dump};
  inv.options = {{"pbkdf2-iterations", "1000"}};
  if (oauth2::admin::import_django(inv) != 0) die("the template store's import failed");
  mkdir(g_store.c_str(), 0700);
  copy_file(g_template + "/data.mdb", g_store + "/data.mdb");
  g_template_records = new Records(read_records_of(g_template));
}

// FUZZ_IMPORT_SEEDS=<dir>: the known dates as seeds (mode 0: a raw date)
void write_seeds(const std::string& dir) {
  int i = 0;
  for (const KnownDate& k : kKnown) {
    write_file(dir + "/seed-date-" + std::to_string(i++), std::string(k.text) + '\0');
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("FUZZ_IMPORT_DIR");
  if (!dir || !*dir) die("FUZZ_IMPORT_DIR names no directory (run scripts/fuzz-import)");
  g_dir = dir;
  g_template = g_dir + "/template";
  g_store = g_dir + "/store";
  g_dump = g_dir + "/dump.json";
  check_known();
  make_template();
  if (const char* seeds = std::getenv("FUZZ_IMPORT_SEEDS")) write_seeds(seeds);
  if (fuzz::stats_wanted(print_stats)) g_stats = new Stats;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0: {
      const std::string s = in.ConsumeRemainingBytesAsString();
      check_raw_date(s);
      if (g_stats) {
        g_stats->raw_dates++;
        g_stats->raw_dates_read += parse_iso8601(s).has_value();
      }
      break;
    }
    case 1: {
      const auto [s, want] = django_date(in);
      const auto got = parse_iso8601(s);
      if (!got || *got != want) {
        broken("a date of Django's form not read as its instant",
               s + ": " + (got ? std::to_string(*got) : "refused") + ", timegm " +
                   std::to_string(want));
      }
      if (g_stats) g_stats->django_dates++;
      break;
    }
    case 2: {
      std::vector<std::pair<std::string, std::string>> options;
      if (in.ConsumeBool()) options.emplace_back("user-model", "users.User");
      write_file(g_dump, make_dump(in));
      if (g_stats) g_stats->dumps++;
      import_and_check(options);
      break;
    }
    default:
      write_file(g_dump, in.ConsumeRemainingBytesAsString());
      if (g_stats) g_stats->raw_dumps++;
      import_and_check({});
      break;
  }
  return 0;
}
