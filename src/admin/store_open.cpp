// Opening the store from the command line: creating its directory, and
// the ownership rules for a CLI run as root on a store nginx's workers use.

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "cli.hpp"
#include "cluster.hpp"
#include "realms.hpp"

namespace oauth2::admin {
namespace {

// mkdir -p, intermediate directories 0755 and the store itself 0750 (when
// run as root it stays root's: nginx's master gives it to the workers'
// user at its next start).
void make_store_dir(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  struct stat st;
  if (stat(path.c_str(), &st) == 0 || errno != ENOENT) return;
  for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
    std::string parent = path.substr(0, pos);
    if (parent.back() == '/' || stat(parent.c_str(), &st) == 0) continue;
    if (mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
      throw std::runtime_error(errno_text("cannot create " + parent));
    }
  }
  if (mkdir(path.c_str(), 0750) != 0) {
    if (errno == EEXIST) return;
    throw std::runtime_error(errno_text("cannot create " + path));
  }
  if (chmod(path.c_str(), 0750) != 0) {  // whatever the umask
    throw std::runtime_error(errno_text("cannot chmod " + path));
  }
}

// Run as root on a store that belongs to another user (nginx's master
// gives it to the workers' user): give that user the files an earlier root
// run may have left, then become that user for good, so that LMDB creates
// and writes its files as the workers would.  Root never opens a file in a
// directory another user controls: a symlink planted there is skipped here
// (O_NOFOLLOW, fchown) and followed later with that user's rights only; a
// file with other hard links (one that user made to a file of root's) is
// refused.
void become_store_owner(const std::string& path) {
  if (geteuid() != 0) return;
  int dfd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) throw std::runtime_error(errno_text("cannot open " + path));
  struct stat dir;
  bool ok = fstat(dfd, &dir) == 0;
  std::string failed = "cannot stat " + path;
  if (ok && dir.st_uid != 0) {
    for (const char* name : {"data.mdb", "lock.mdb", "sync.lock"}) {
      int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) {
        if (errno == ENOENT || errno == ELOOP) continue;
        ok = false;
        failed = "cannot open " + path + "/" + name;
        break;
      }
      struct stat st;
      ok = fstat(fd, &st) == 0;
      const bool give =
          ok && S_ISREG(st.st_mode) && (st.st_uid != dir.st_uid || st.st_gid != dir.st_gid);
      if (give && st.st_nlink != 1) {
        close(fd);
        throw std::runtime_error(path + "/" + name +
                                 " has other hard links: not giving it to the store's owner");
      }
      if (give) ok = fchown(fd, dir.st_uid, dir.st_gid) == 0;
      int saved = errno;
      close(fd);
      errno = saved;
      if (!ok) {
        failed = "cannot chown " + path + "/" + name;
        break;
      }
    }
  }
  int saved = errno;
  close(dfd);
  errno = saved;
  if (!ok) throw std::runtime_error(errno_text(failed));
  if (dir.st_uid == 0) return;
  if (setgroups(1, &dir.st_gid) != 0 || setgid(dir.st_gid) != 0 || setuid(dir.st_uid) != 0 ||
      geteuid() != dir.st_uid) {
    throw std::runtime_error(errno_text("cannot switch to the owner of " + path));
  }
}

// OAUTH2_ADMIN_MIRROR_WAIT_MS: how long oauth2-admin waits for the
// mirror to show a change, or to catch up with etcd (tests shorten it)
long mirror_wait_ms() {
  const char* v = getenv("OAUTH2_ADMIN_MIRROR_WAIT_MS");
  if (!v || !*v) return Cluster::kMirrorWaitMs;
  char* end = nullptr;
  errno = 0;
  const long ms = strtol(v, &end, 10);
  if (*end || errno || ms < 1 || ms > 600000) {
    throw std::runtime_error("OAUTH2_ADMIN_MIRROR_WAIT_MS: " + quoted(v) +
                             " is not a number of milliseconds from 1 to 600000");
  }
  return ms;
}

// A command's change that etcd applied is done, whether or not the
// mirror shows it in time: its answer (a secret shown once, a key moved
// out of the store) must be given, not lost to a 503-like failure.
void warn_applied_unseen(int64_t, const std::string& why) {
  fprintf(stderr,
          "%s: warning: %s The change is done: commands run here show it once the mirror "
          "catches up.\n",
          kProg, why.c_str());
}

std::runtime_error not_a_mirror(const Invocation& inv) {
  return std::runtime_error("--etcd: " + inv.store +
                            " is not a mirror yet: start oauth2-admin sync --store " + inv.store +
                            " --etcd " + inv.etcd + " first");
}

// The store's files, opened (created with create); nullptr when there is
// no store and !create.  With --etcd the store must be this machine's
// mirror: none there is refused before anything is made (a read would
// answer from nothing, as if the cluster were empty).  !upgrade: LMDB's
// files are opened but nothing is written to them, an older schema left
// as it is (Store's !create).
std::unique_ptr<Store> open_store_files(const Invocation& inv, bool create, MirrorUse use,
                                        bool upgrade = true) {
  struct stat st;
  const std::string data = inv.store + "/data.mdb";
  const bool absent = lstat(data.c_str(), &st) != 0 && errno == ENOENT;
  if (!inv.etcd.empty() && absent) throw not_a_mirror(inv);
  if (create) {
    make_store_dir(inv.store);
  } else {
    if (stat(inv.store.c_str(), &st) != 0) {
      if (errno == ENOENT) return nullptr;
      throw std::runtime_error(errno_text("cannot stat " + inv.store));
    }
    if (!S_ISDIR(st.st_mode)) {
      throw std::runtime_error(inv.store + " is not a directory");
    }
    if (absent) return nullptr;
  }
  become_store_owner(inv.store);
  // the size nginx gave it
  auto store = std::make_unique<Store>(inv.store, 0, upgrade);
  if (!inv.etcd.empty()) {
    if (!store->is_mirror()) throw not_a_mirror(inv);
    EtcdConfig config = etcd_config(inv);
    check_mirror_of(*store, config.prefix);
    auto cluster = std::make_shared<Cluster>(config, kDefaultMaxStalenessMs);
    cluster->set_mirror_wait_ms(mirror_wait_ms());
    if (use == MirrorUse::kCommand) cluster->set_applied_unseen(warn_applied_unseen);
    store->use_cluster(std::move(cluster));
  }
  return store;
}

// nginx and the daemon refuse a mirror staler than max_staleness; a
// command waits for it to apply etcd's revision now, or fails naming its
// age and sync: what it reads, or backup copies (a copy restored later
// would bring back what the cluster deleted since), is never older than
// the cluster.  Unlike Cluster::catch_up, a stale mirror gets the wait
// too: one whose sync has just restarted catches up in milliseconds.
void catch_up(Store& store) {
  Cluster& cluster = *store.cluster();
  const int64_t revision = cluster.current_revision();
  if (cluster.wait_for_mirror(store, revision, cluster.mirror_wait_ms())) return;
  const std::string age = mirror_staleness(store);
  throw StoreError::stale("the mirror " + store.path() + " has not reached etcd's revision " +
                          std::to_string(revision) + " within " +
                          std::to_string(cluster.mirror_wait_ms()) + " ms" +
                          (age.empty() ? ": is oauth2-admin sync running for it?" : "; " + age));
}

std::runtime_error unknown_realm(const std::string& realm) {
  return std::runtime_error("unknown realm " + quoted(realm) +
                            " (oauth2-admin realm add registers a realm)");
}

// open_store's work; !upgrade: open_store_unchanged's
std::unique_ptr<Store> open_checked(const Invocation& inv, bool create, MirrorUse use,
                                    bool upgrade) {
  std::unique_ptr<Store> store = open_store_files(inv, create, use, upgrade);
  if (store && store->cluster() && use == MirrorUse::kCommand) catch_up(*store);
  if (inv.realm == kDefaultRealm) return store;
  if (!store) throw unknown_realm(inv.realm);
  // A store left as it is may lack a database this build has (one of
  // 0.8's schema): Store then opened none of them, and nothing can be
  // read through it.  Only a copy opens it so, and a copy holds every
  // realm, whichever --realm names.
  if (!upgrade && store->dbi(Db::kMeta) == 0) return store;
  Txn txn = store->read();
  if (!realm_known(txn, inv.realm)) throw unknown_realm(inv.realm);
  return store;
}

}  // namespace

std::unique_ptr<Store> open_store(const Invocation& inv, bool create, MirrorUse use) {
  return open_checked(inv, create, use, true);
}

std::unique_ptr<Store> open_store_unchanged(const Invocation& inv) {
  return open_checked(inv, false, MirrorUse::kCommand, false);
}

std::unique_ptr<Store> open_mirror_store(const Invocation& inv) {
  make_store_dir(inv.store);
  become_store_owner(inv.store);
  return std::make_unique<Store>(inv.store, 0);
}

std::unique_ptr<Store> open_app_store(const Invocation& inv, std::string_view client_id) {
  if (!valid_client_id(client_id)) return nullptr;
  return open_store(inv, false);
}

int store_owner_child(const Invocation& inv, const std::function<int()>& work) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(errno_text("fork"));
  if (pid == 0) {
    int rc = kExitFailure;
    try {
      rc = work();
    } catch (const StoreError& e) {
      fail("store " + quoted(inv.store) + ": " + e.what());
    } catch (const std::exception& e) {
      fail(e.what());
    }
    fflush(nullptr);
    _exit(rc);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) fail("killed by signal " + std::to_string(WTERMSIG(status)));
  return WIFEXITED(status) ? WEXITSTATUS(status) : kExitFailure;
}

bool in_store_owner_child(const Invocation& inv, const std::function<int()>& work) {
  return store_owner_child(inv, work) == 0;
}

}  // namespace oauth2::admin
