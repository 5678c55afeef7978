// The frame of oauth2-admin: a table of subcommands, the command line
// parser, --help, JSON output and the opening of the store.  Each group of
// subcommands (apps.cpp; later the daemon, `serve`) adds its Command
// entries to the table that main.cpp hands to the parser.

#pragma once

#include <jansson.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "apikeys.hpp"
#include "etcd.hpp"
#include "json.hpp"
#include "store.hpp"

namespace oauth2::admin {

constexpr const char* kProg = "oauth2-admin";
// The store without --store: a development build's is ./var/store (make
// run's); the Debian package's is the store its units and nginx use
// (debian/rules: make DEFAULT_STORE=/var/lib/nginx/oauth2), so that a
// command run without --store reads and writes the store nginx serves.
#ifndef OAUTH2_DEFAULT_STORE
#define OAUTH2_DEFAULT_STORE "./var/store"
#endif
constexpr const char* kDefaultStore = OAUTH2_DEFAULT_STORE;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
// a child's: it failed after part of its work was done and kept (the
// command still exits kExitFailure)
constexpr int kExitPartial = 3;

// A bad command line: reported with a hint to --help, exit 2.  Thrown only
// before the store is opened.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct OptionSpec {
  std::string_view name;  // without the leading "--"
  bool takes_value;
  bool repeatable;
  // with takes_value false: a value may follow "=" (--name=<value>, never
  // a separate argument); the bare option's value is empty
  bool value_optional = false;
};

struct Invocation;

struct Command {
  std::string_view words;     // "app add"
  std::string_view operands;  // "<client_id>", for the command lists
  const char* summary;        // one line for the command lists
  const char* usage;          // --help, before the global options
  const OptionSpec* options;
  size_t n_options;
  size_t min_operands;
  size_t max_operands;
  int (*run)(const Invocation&);  // the exit status
};

using Commands = std::vector<const Command*>;

// A parsed command line.  The first usage error is kept, not thrown, so
// that --help anywhere still wins.
struct Invocation {
  std::string store = kDefaultStore;
  std::string realm = kDefaultRealm;
  bool realm_given = false;              // --realm was on the command line
  std::string etcd;                      // --etcd: cluster mode
  std::string etcd_prefix = "/oauth2/";  // --prefix
  std::string etcd_cacert;               // --etcd-cacert: TLS towards etcd
  std::string etcd_cert;                 // --etcd-cert
  std::string etcd_key;                  // --etcd-key
  bool help = false;
  std::vector<std::string> words;  // the command words matched so far
  const Command* command = nullptr;
  std::vector<std::string> operands;
  std::vector<std::pair<std::string, std::string>> options;  // in order
  std::optional<std::string> error;

  std::vector<std::string> values(std::string_view name) const;
  std::optional<std::string> value(std::string_view name) const;
  bool has(std::string_view name) const { return value(name).has_value(); }
};

// The groups of subcommands.
void add_app_commands(Commands& out);
void add_apikey_commands(Commands& out);  // apikey ... (apikeys_cli.cpp)
void add_user_commands(Commands& out);    // user ...
void add_import_commands(Commands& out);  // import-django
void add_token_commands(Commands& out);
void add_serve_commands(Commands& out);  // serve (the daemon)
void add_realm_commands(Commands& out);  // realm ... (realms_cli.cpp)
void add_backup_commands(Commands& out);
void add_sync_commands(Commands& out);     // sync (sync.cpp)
void add_consent_commands(Commands& out);  // consent ... (consents.cpp)

// Global options (--store, --realm, --help) anywhere; a command's options
// after its words; "--" ends the options.
Invocation parse_args(int argc, char** argv, const Commands& commands);
// Prints --help for the command, its group or the program; the exit status.
int print_help(const Invocation& inv, const Commands& commands);
// Throws UsageError for the recorded error, a missing command, a wrong
// number of operands, an empty --store or an invalid --realm.
void check_invocation(const Invocation& inv);
// --etcd, --prefix and the --etcd-* TLS files, for Etcd and Cluster
EtcdConfig etcd_config(const Invocation& inv);
// " app add": the words matched, each after a space.
std::string joined_words(const Invocation& inv);

// Prints "oauth2-admin: <msg>" on stderr; the exit status kExitFailure.
int fail(const std::string& msg);
// The time a daemon's log line starts with: UTC to the millisecond,
// 2026-12-05T06:47:49.077Z.
std::string log_time();
// A daemon's log line on stderr in one write: "oauth2-admin<who>:
// <log_time()> <what>" (who: "" for serve, " sync" for sync).
void log_line(const char* who, const std::string& what);
// --pbkdf2-iterations of the commands that hash passwords: 1 to
// 100000000, kDefaultPbkdf2Iterations when absent.
unsigned pbkdf2_iterations_option(const Invocation& inv);
// --scope: distinct scope tokens separated by single spaces (RFC 6749
// 3.3); nullopt when absent.
std::optional<std::string> scope_option(const Invocation& inv);
// A lifetime option (--access-token-ttl, --ttl): seconds, 1 to 315360000;
// nullopt when absent.
std::optional<int64_t> ttl_option(const Invocation& inv, const char* name);

// s made safe for a terminal and quoted: 'x\x1B'.
std::string quoted(std::string_view s);
// what + ": " + strerror(errno).
std::string errno_text(const std::string& what);
// "no application with client_id <id>", the id shown only when it is
// plain printable ASCII.
std::string no_application(std::string_view id);

// Writes j and a newline to fd 1, unbuffered, leaving no copy of the text
// in freed memory (it may hold a secret); throws if it cannot.
void print_json(const json_t* j);
// jansson constructors return NULL on failure (no memory, invalid UTF-8).
json_t* checked(json_t* j);
void set_member(json_t* obj, const char* key, json_t* value);  // steals
void append_item(json_t* arr, json_t* value);                  // steals
json_t* string_json(const std::string& s);
json_t* strings_json(const std::vector<std::string>& v);

// api_key_json() (apikeys.hpp) as an object, for print_json and
// HttpResponse::json; the text it was parsed from is wiped.  With a key,
// the object holds a copy of it: wipe_api_key() before freeing it.
Json api_key_object(const ApiKeyInfo& k, const std::string* key);
// overwrites obj's "api_key" string in place, if it has one
void wipe_api_key(json_t* obj) noexcept;

// What --etcd asks of the mirror of who opens the store.
enum class MirrorUse {
  // a command: the mirror first catches up with etcd's revision now (a
  // StoreError, naming its age and sync, when it is staler than
  // max_staleness or does not catch up within the wait), so that what the
  // command reads, or backup copies, is not older than the cluster; a
  // change etcd applied is done even when the mirror does not show it
  // within the wait (OAUTH2_ADMIN_MIRROR_WAIT_MS, 5000 ms by default),
  // with a warning on stderr naming its revision
  kCommand,
  // the mirror as it is: the daemon (which checks its age per request,
  // and answers 503 for a change the mirror does not show, as nginx) and
  // restore (which waits for the revision it wrote)
  kAsIs,
};

// The store of the invocation.  With create, mkdir -p (the store itself
// 0750) and LMDB creates its files; without, a store that does not exist
// yet is an empty one: nullptr, nothing created.  Run as root on a store
// that belongs to another user, the process becomes that user first.
// Throws std::runtime_error when --realm names a realm the store does not
// know (realms.hpp): nothing is written to a misspelt realm.
std::unique_ptr<Store> open_store(const Invocation& inv, bool create,
                                  MirrorUse use = MirrorUse::kCommand);
// The existing store as it is, for a copy of it (backup): nothing is
// written to it, and a store of an older schema stays at that schema, so
// that the copy is one the release before opens (a store opened by
// open_store is upgraded to this build's schema at once).  nullptr when
// there is no store.  As open_store otherwise (run as root it becomes the
// store's owner, --etcd's mirror must be caught up, --realm must be
// known), but a store that lacks one of this build's databases (0.8's)
// is copied whatever --realm names: it has no realm but the default.
std::unique_ptr<Store> open_store_unchanged(const Invocation& inv);
// The existing store of a command on the application client_id: nullptr,
// nothing opened, when client_id cannot be one or there is no store yet.
std::unique_ptr<Store> open_app_store(const Invocation& inv, std::string_view client_id);
// Runs work (which opens the store, and so may become its owner) in a
// child process and waits for it: for a command that makes a file as the
// caller first, which the child writes and this process removes if the
// work fails.  work's errors are printed as the CLI prints them; true when
// it returned 0.
bool in_store_owner_child(const Invocation& inv, const std::function<int()>& work);
// the same, with the child's exit status (kExitFailure if it was killed)
int store_owner_child(const Invocation& inv, const std::function<int()>& work);
// The store oauth2-admin sync mirrors etcd into: created if missing, opened
// as its owner, never in cluster mode itself.
std::unique_ptr<Store> open_mirror_store(const Invocation& inv);

}  // namespace oauth2::admin
