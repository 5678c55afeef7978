// oauth2-admin: the command line over the store that ngx_http_oauth2_module
// reads.  One binary; its subcommands come from one table (commands()), to
// which the daemon, `oauth2-admin serve`, will add itself.  Results are
// JSON on stdout, errors one line on stderr: exit 2 for a usage error,
// which never touches the store, and 1 for any other failure.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <new>

#include "cli.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

Commands commands() {
  Commands all;
  add_app_commands(all);
  add_apikey_commands(all);
  add_user_commands(all);
  add_import_commands(all);
  add_token_commands(all);
  add_serve_commands(all);
  add_realm_commands(all);
  add_backup_commands(all);
  add_sync_commands(all);
  add_consent_commands(all);
  return all;
}

// fds 0-2 must be open before the store is: LMDB would otherwise get fd 1
// and the JSON, secret included, would land in its lock file.
bool standard_fds_open() {
  bool stdout_open = true;
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    if (fd == 1) stdout_open = false;
    int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (null != fd) return false;
  }
  if (!stdout_open) fprintf(stderr, "%s: stdout is closed\n", kProg);
  return stdout_open;
}

int run(int argc, char** argv) {
  if (!standard_fds_open()) return kExitFailure;
  signal(SIGPIPE, SIG_IGN);  // a closed stdout is an error, not a death
  Invocation inv;
  try {
    const Commands all = commands();
    inv = parse_args(argc, argv, all);
    if (inv.help) return print_help(inv, all);
    check_invocation(inv);
    return inv.command->run(inv);
  } catch (const UsageError& e) {
    fprintf(stderr, "%s: %s\nTry '%s%s --help'.\n", kProg, e.what(), kProg,
            joined_words(inv).c_str());
    return kExitUsage;
  } catch (const StoreError& e) {
    fprintf(stderr, "%s: store %s: %s\n", kProg, quoted(inv.store).c_str(), e.what());
  } catch (const std::bad_alloc&) {
    fprintf(stderr, "%s: out of memory\n", kProg);
  } catch (const std::exception& e) {
    fprintf(stderr, "%s: %s\n", kProg, e.what());
  } catch (...) {
    fprintf(stderr, "%s: unexpected error\n", kProg);
  }
  return kExitFailure;
}

}  // namespace
}  // namespace oauth2::admin

int main(int argc, char** argv) {
  return oauth2::admin::run(argc, argv);
}
