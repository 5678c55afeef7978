// Preparing a store's directory in nginx's master process.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "store.hpp"
#include "store_records.hpp"

namespace oauth2 {

using records::mkdir_p;

namespace {

// The directory and any files root left (oauth2-admin run before nginx)
// go to the workers' user.  Never follow a symlink: the directory belongs
// to that user, who could plant one pointing anywhere; nor chown a file
// with another name (a hard link that user made to a file of root's,
// where the kernel's protected_hardlinks is off).
void give_to_workers(const std::string& path, long uid, long gid) {
  for (const char* name : {"", "data.mdb", "lock.mdb", "sync.lock"}) {
    std::string p = *name ? path + "/" + name : path;
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) continue;
    if (*name && S_ISREG(st.st_mode) && st.st_nlink != 1) {
      throw std::runtime_error(p + " has other hard links: not giving it to the workers' user");
    }
    if (fchownat(AT_FDCWD, p.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid),
                 AT_SYMLINK_NOFOLLOW) != 0) {
      throw std::runtime_error("chown " + p + ": " + strerror(errno));
    }
  }
}

}  // namespace

void prepare_store(const std::string& path, size_t mapsize, long uid, long gid) {
  mkdir_p(path);
  struct stat data_st;
  const bool exists = lstat((path + "/data.mdb").c_str(), &data_st) == 0;
  if (uid < 0 && gid < 0) {
    if (exists) {
      Store check(path, mapsize, false);
    }
    return;
  }

  give_to_workers(path, uid, gid);

  // Create or validate the environment as that user, in a child process,
  // so that root never opens files inside a directory another user owns.
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe: " + std::string(strerror(errno)));
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    throw std::runtime_error("fork: " + std::string(strerror(errno)));
  }
  if (pid == 0) {
    close(fds[0]);
    std::string msg;
    if (setgid(static_cast<gid_t>(gid)) != 0 || setuid(static_cast<uid_t>(uid)) != 0) {
      msg = std::string("setuid: ") + strerror(errno);
    } else {
      try {
        if (exists) {
          Store check(path, mapsize, false);
        }
      } catch (const std::exception& e) {
        msg = e.what();
      }
    }
    if (!msg.empty()) {
      ssize_t n = write(fds[1], msg.data(), msg.size());
      (void)n;
    }
    _exit(msg.empty() ? 0 : 1);
  }
  close(fds[1]);
  char buf[512];
  std::string msg;
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) msg.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  // never hang the master: a writer that holds the lock for long (a
  // stopped oauth2-admin) only delays the check, the workers retry anyway
  int status = 0;
  for (int waited_ms = 0;; waited_ms += 10) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (waited_ms >= 5000) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      throw std::runtime_error(
          "store busy (its writer lock is held): not "
          "checked, workers will open it");
    }
    usleep(10000);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(msg.empty() ? "store check failed" : msg);
  }
}

}  // namespace oauth2
