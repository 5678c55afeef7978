// The frame of oauth2-admin: parsing, --help, messages and JSON output.

#include "cli.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iterator>
#include <new>

#include "codec.hpp"
#include "crypto.hpp"
#include "etcd.hpp"
#include "json.hpp"
#include "model.hpp"
#include "password.hpp"

namespace oauth2::admin {
namespace {

constexpr unsigned kMaxIterations = 100000000;  // password.cpp's bound

// s made safe for a terminal: controls, C1 controls and the bytes of
// invalid UTF-8 become \xNN, and a long string is cut, between two
// characters (a Unicode username cut inside one made a warning that is no
// UTF-8, which no JSON string holds).
std::string printable(std::string_view s) {
  constexpr size_t kMaxShown = 80;
  const bool utf8 = valid_utf8(s);
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (out.size() >= kMaxShown && !(utf8 && (c & 0xC0) == 0x80)) {
      out += "...";
      break;
    }
    bool c1 = c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9F;
    if (c < 0x20 || c == 0x7F || (c >= 0x80 && (!utf8 || c1))) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
      if (c1) {
        snprintf(buf, sizeof(buf), "\\x%02X", static_cast<unsigned char>(s[++i]));
        out += buf;
      }
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

// one option a line
// clang-format off
const OptionSpec kGlobalOptions[] = {
    {"store", true, false},
    {"realm", true, false},
    {"etcd", true, false},
    {"prefix", true, false},
    {"etcd-cacert", true, false},
    {"etcd-cert", true, false},
    {"etcd-key", true, false},
};
// clang-format on

const char kGlobalHelp[] =
    "Global options, before or after the command:\n"
    "  --store <dir>    the store directory (default " OAUTH2_DEFAULT_STORE
    ")\n"
    "  --realm <name>   the realm of the records (default \"default\")\n"
    "  --etcd <url>[,<url>...]\n"
    "                   cluster mode: write to etcd; --store is this\n"
    "                   machine's mirror (oauth2-admin sync keeps it)\n"
    "  --prefix <p>     the cluster's etcd key prefix (default /oauth2/)\n"
    "  --etcd-cacert <file>\n"
    "                   the CA of etcd's certificate (https:// URLs; default\n"
    "                   the system's)\n"
    "  --etcd-cert <file>, --etcd-key <file>\n"
    "                   this client's certificate and key, PEM, for an etcd\n"
    "                   run with --client-cert-auth\n"
    "  -h, --help       show help; 'oauth2-admin <command> --help' for one "
    "command\n";

std::string& global_option(Invocation& inv, std::string_view name) {
  if (name == "store") return inv.store;
  if (name == "realm") return inv.realm;
  if (name == "etcd") return inv.etcd;
  if (name == "etcd-cacert") return inv.etcd_cacert;
  if (name == "etcd-cert") return inv.etcd_cert;
  if (name == "etcd-key") return inv.etcd_key;
  return inv.etcd_prefix;
}

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t sp = s.find(' ', pos);
    if (sp == std::string_view::npos) sp = s.size();
    out.push_back(s.substr(pos, sp - pos));
    pos = sp + 1;
  }
  return out;
}

// Whether words is a prefix of the command's words (or all of them).
bool starts_with_words(const Command& c, const std::vector<std::string>& w) {
  auto cw = split_words(c.words);
  if (w.size() > cw.size()) return false;
  for (size_t i = 0; i < w.size(); i++) {
    if (cw[i] != w[i]) return false;
  }
  return true;
}

const Command* find_command(const Commands& commands, const std::vector<std::string>& words,
                            bool* is_prefix) {
  *is_prefix = false;
  for (const Command* c : commands) {
    if (!starts_with_words(*c, words)) continue;
    if (split_words(c->words).size() == words.size()) return c;
    *is_prefix = true;
  }
  return nullptr;
}

const OptionSpec* find_option(const OptionSpec* specs, size_t n, std::string_view name) {
  for (size_t i = 0; i < n; i++) {
    if (specs[i].name == name) return &specs[i];
  }
  return nullptr;
}

// A separate argument that cannot be an option's value: `--name --grant x`
// is a missing name, not a name "--grant".  Write `--name=--x` for that.
bool looks_like_option(std::string_view arg) {
  return arg == "-h" || arg.substr(0, 2) == "--";
}

// Appends to out without leaving a copy of it behind when out grows: the
// output of `app add` holds the client secret.
void append_wiping(std::string& out, const char* p, size_t n) {
  if (out.size() + n > out.capacity()) {
    std::string bigger;
    bigger.reserve(2 * (out.size() + n) + 256);
    bigger.append(out);
    wipe(out);
    out.swap(bigger);
  }
  out.append(p, n);
}

int dump_to_string(const char* buffer, size_t size, void* data) {
  try {
    append_wiping(*static_cast<std::string*>(data), buffer, size);
    return 0;
  } catch (...) {
    return -1;
  }
}

}  // namespace

std::string quoted(std::string_view s) {
  return "'" + printable(s) + "'";
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

int fail(const std::string& msg) {
  fprintf(stderr, "%s: %s\n", kProg, msg.c_str());
  return kExitFailure;
}

std::string log_time() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char at[40];
  size_t n = strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(at + n, sizeof(at) - n, ".%03ldZ", ts.tv_nsec / 1000000);
  return at;
}

void log_line(const char* who, const std::string& what) {
  const std::string line = std::string(kProg) + who + ": " + log_time() + " " + what + "\n";
  // one write, so that the lines of threads never interleave
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = write(2, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

unsigned pbkdf2_iterations_option(const Invocation& inv) {
  auto v = inv.value("pbkdf2-iterations");
  if (!v) return kDefaultPbkdf2Iterations;
  bool ok = !v->empty() && v->size() <= 9;
  for (char ch : *v) {
    if (ch < '0' || ch > '9') ok = false;
  }
  unsigned long n = ok ? std::stoul(*v) : 0;
  // the floor of the daemon's and of oauth2_pbkdf2_iterations (R16)
  if (n < 1000 || n > kMaxIterations) {
    throw UsageError("--pbkdf2-iterations: " + quoted(*v) +
                     " is not a number from 1000 to 100000000");
  }
  return static_cast<unsigned>(n);
}

std::optional<std::string> scope_option(const Invocation& inv) {
  auto scope = inv.value("scope");
  if (scope && !parse_scope(*scope, nullptr)) {
    throw UsageError("--scope: " + quoted(*scope) +
                     " is not a list of distinct scope tokens separated "
                     "by single spaces (RFC 6749 3.3)");
  }
  return scope;
}

std::optional<int64_t> ttl_option(const Invocation& inv, const char* name) {
  auto v = inv.value(name);
  if (!v) return std::nullopt;
  auto ttl = parse_ttl(*v);
  if (!ttl) {
    throw UsageError(std::string("--") + name + ": " + quoted(*v) +
                     " is not a number of seconds from 1 to 315360000");
  }
  return ttl;
}

namespace {

// The value of an option: after "=" (inline), else the next argument
// when the option takes one (*i moves past it).  What is wrong, after
// the option's name, or nullopt.
std::optional<std::string> option_value(const OptionSpec& spec,
                                        std::optional<std::string_view> inline_value, int argc,
                                        char** argv, int* i, std::string* value) {
  if (spec.takes_value) {
    if (inline_value) {
      *value = *inline_value;
    } else if (*i + 1 < argc && !looks_like_option(argv[*i + 1])) {
      *value = argv[++*i];
    } else {
      return " needs a value";
    }
  } else if (inline_value) {
    // --name=<value> of an option whose value is optional; bare, ""
    if (!spec.value_optional) return " takes no value";
    if (inline_value->empty()) return "=: needs a value after \"=\"";
    *value = *inline_value;
  }
  return std::nullopt;
}

}  // namespace

std::string no_application(std::string_view id) {
  bool plain = !id.empty() && id.size() <= kMaxClientId;
  for (char ch : id) {
    if (ch < 0x21 || ch > 0x7E) plain = false;
  }
  return plain ? "no application with client_id " + std::string(id)
               : std::string("no such application");
}

std::vector<std::string> Invocation::values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& o : options) {
    if (o.first == name) out.push_back(o.second);
  }
  return out;
}

std::optional<std::string> Invocation::value(std::string_view name) const {
  for (const auto& o : options) {
    if (o.first == name) return o.second;
  }
  return std::nullopt;
}

std::string joined_words(const Invocation& inv) {
  std::string out;
  for (const auto& w : inv.words) out += " " + w;
  return out;
}

Invocation parse_args(int argc, char** argv, const Commands& commands) {
  Invocation inv;
  auto fail = [&inv](std::string msg) {
    if (!inv.error) inv.error = std::move(msg);
  };
  bool options_done = false;  // after "--"
  bool words_done = false;    // after an unknown command word
  for (int i = 1; i < argc; i++) {
    std::string_view arg = argv[i];
    if (!options_done && arg == "--") {
      options_done = true;
      continue;
    }
    if (!options_done && (arg == "-h" || arg == "--help")) {
      inv.help = true;
      continue;
    }
    if (!options_done && arg.size() > 1 && arg[0] == '-') {
      if (arg.substr(0, 2) != "--") {
        fail("unknown option " + quoted(arg));
        continue;
      }
      std::string_view name = arg.substr(2);
      std::optional<std::string_view> inline_value;
      if (size_t eq = name.find('='); eq != std::string_view::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      const OptionSpec* spec = find_option(kGlobalOptions, std::size(kGlobalOptions), name);
      const bool global = spec != nullptr;
      if (!spec && inv.command) {
        spec = find_option(inv.command->options, inv.command->n_options, name);
      }
      if (!spec) {
        fail("unknown option " + quoted(std::string("--") += name) +
             (inv.command ? "" : " (command options follow the command)"));
        continue;
      }
      std::string opt = "--" + std::string(name);
      std::string value;
      if (auto why = option_value(*spec, inline_value, argc, argv, &i, &value)) {
        fail(opt + *why);
        continue;
      }
      if (global) {  // the last one wins, so a wrapper can set defaults
        if (name == "realm") inv.realm_given = true;
        global_option(inv, name) = std::move(value);
      } else {
        if (!spec->repeatable && inv.has(name)) fail(opt + " given twice");
        inv.options.emplace_back(name, std::move(value));
      }
      continue;
    }
    if (inv.command || words_done) {
      inv.operands.emplace_back(arg);
      continue;
    }
    inv.words.emplace_back(arg);
    bool prefix = false;
    inv.command = find_command(commands, inv.words, &prefix);
    if (!inv.command && !prefix) {
      fail("unknown command " + quoted(joined_words(inv).substr(1)));
      inv.words.pop_back();
      words_done = true;
    }
  }
  return inv;
}

int print_help(const Invocation& inv, const Commands& commands) {
  std::string text;
  if (inv.command) {
    text = inv.command->usage;
  } else {
    std::string prefix = joined_words(inv);
    text =
        "usage: oauth2-admin [--store <dir>] [--realm <name>]" + prefix + " <command> [<args>]\n\n";
    if (inv.words.empty()) {
      text +=
          "Manages the store of ngx_http_oauth2_module: its realms, users,\n"
          "applications (OAuth 2 clients), API keys and tokens, its backups,\n"
          "and the admin daemon (serve).  Results are JSON on stdout; errors\n"
          "go to stderr, with exit status 2 for a usage error and 1 for any\n"
          "other.\n\n";
    }
    text += "Commands:\n";
    for (const Command* c : commands) {
      if (!starts_with_words(*c, inv.words)) continue;
      std::string left = std::string(c->words);
      if (!c->operands.empty()) left += " " + std::string(c->operands);
      char line[160];
      snprintf(line, sizeof(line), "  %-34s %s\n", left.c_str(), c->summary);
      text += line;
    }
  }
  text += "\n";
  text += kGlobalHelp;
  fputs(text.c_str(), stdout);
  return fflush(stdout) == 0 ? 0 : kExitFailure;
}

void check_invocation(const Invocation& inv) {
  if (inv.error) throw UsageError(*inv.error);
  if (!inv.command) {
    if (inv.words.empty()) throw UsageError("missing command");
    throw UsageError("missing subcommand after " + quoted(joined_words(inv).substr(1)));
  }
  const Command& c = *inv.command;
  if (inv.operands.size() < c.min_operands) {
    throw UsageError(std::string(c.words) + " needs " + std::string(c.operands));
  }
  if (inv.operands.size() > c.max_operands) {
    throw UsageError("unexpected argument " + quoted(inv.operands[c.max_operands]));
  }
  if (inv.store.empty()) throw UsageError("--store: empty directory name");
  if (!valid_realm(inv.realm)) {
    throw UsageError("--realm: invalid realm " + quoted(inv.realm));
  }
  try {
    if (!inv.etcd.empty()) parse_etcd_endpoints(inv.etcd);
    check_etcd_prefix(inv.etcd_prefix);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string(inv.etcd.empty() ? "--prefix: " : "--etcd: ") + e.what());
  }
  const bool tls = !inv.etcd_cacert.empty() || !inv.etcd_cert.empty() || !inv.etcd_key.empty();
  if (tls && inv.etcd.empty()) {
    throw UsageError(std::string(!inv.etcd_cacert.empty() ? "--etcd-cacert"
                                 : !inv.etcd_cert.empty() ? "--etcd-cert"
                                                          : "--etcd-key") +
                     " needs --etcd");
  }
  if (!inv.etcd.empty()) {
    try {
      check_etcd_tls(etcd_config(inv), {"--etcd", "--etcd-cacert", "--etcd-cert", "--etcd-key"});
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
  }
}

EtcdConfig etcd_config(const Invocation& inv) {
  EtcdConfig config;
  config.endpoints = parse_etcd_endpoints(inv.etcd);
  config.prefix = inv.etcd_prefix;
  config.cacert = inv.etcd_cacert;
  config.cert = inv.etcd_cert;
  config.key = inv.etcd_key;
  return config;
}

void print_json(const json_t* j) {
  std::string out;
  WipeOnExit wiper{out};
  if (json_dump_callback(j, dump_to_string, &out, JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) != 0) {
    throw std::runtime_error("cannot format the result");
  }
  append_wiping(out, "\n", 1);
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = write(STDOUT_FILENO, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(errno_text("cannot write to stdout"));
    done += static_cast<size_t>(n);
  }
}

json_t* checked(json_t* j) {
  if (!j) throw std::runtime_error("invalid data (not UTF-8?) in the store");
  return j;
}

void set_member(json_t* obj, const char* key, json_t* value) {
  if (json_object_set_new(obj, key, checked(value)) != 0) {
    throw std::bad_alloc();
  }
}

void append_item(json_t* arr, json_t* value) {
  if (json_array_append_new(arr, value) != 0) {
    throw std::bad_alloc();
  }
}

json_t* string_json(const std::string& s) {
  return checked(json_stringn(s.data(), s.size()));
}

json_t* strings_json(const std::vector<std::string>& v) {
  Json arr(checked(json_array()));
  for (const auto& s : v) append_item(arr.get(), string_json(s));
  return arr.release();
}

Json api_key_object(const ApiKeyInfo& k, const std::string* key) {
  std::string text = api_key_json(k, key);
  WipeOnExit wiper{text};
  Json obj(json_loadb(text.data(), text.size(), 0, nullptr));
  if (!json_is_object(obj.get())) {
    wipe_api_key(obj.get());
    throw std::runtime_error("invalid data (not UTF-8?) in the store");
  }
  return obj;
}

void wipe_api_key(json_t* obj) noexcept {
  wipe_json_string(json_object_get(obj, "api_key"));
}

}  // namespace oauth2::admin
