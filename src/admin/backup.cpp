// oauth2-admin backup <file>: a consistent copy of the store while nginx
// serves: LMDB's compacting copy (Store::copy_compact) inside one read
// transaction, so writers go on and the copy holds every change committed
// before it began.
//
// oauth2-admin restore <file> [--force]: puts such a copy in place as the
// store.  The copy is checked first (an LMDB file, whole, of a schema
// this build reads), then written beside data.mdb and renamed over it.
// It never replaces a store that holds data without --force, nor one that
// any process has open (LMDB's lock, below), --force or not.
//
// oauth2-admin --etcd <urls> restore <file> [--force]: puts its records in
// the cluster instead (below, "into the cluster").

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "cluster.hpp"
#include "codec.hpp"
#include "etcd.hpp"
#include "json.hpp"
#include "store.hpp"
#include "store_records.hpp"

namespace oauth2::admin {
namespace {

using records::check;
using records::get_u64_be;
using records::put_u64_be;
using records::TxnHandle;

// What a backup file holds, read from the file itself.
struct BackupInfo {
  uint64_t bytes = 0;
  unsigned long schema = 0;
  std::vector<std::pair<std::string, size_t>> records;  // database, entries
  // a cluster mirror's: the etcd revision it had applied
  std::optional<int64_t> mirror_revision;
};

// A file descriptor, closed when it goes.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

struct EnvClose {
  void operator()(MDB_env* e) const { mdb_env_close(e); }
};
using Env = std::unique_ptr<MDB_env, EnvClose>;

std::runtime_error not_a_backup(const std::string& path, const std::string& why) {
  return std::runtime_error(quoted(path) + " is not a backup of the store: " + why);
}

// The single-file environment at path, read-only.  MDB_NOLOCK: a backup
// is a private file no other process has open, and no lock file is left
// beside it; the live store is never opened this way.
Env open_backup_env(const std::string& path) {
  MDB_env* raw = nullptr;
  check(mdb_env_create(&raw), "mdb_env_create");
  Env env(raw);
  check(mdb_env_set_maxdbs(raw, 64), "mdb_env_set_maxdbs");
  int rc = mdb_env_open(raw, path.c_str(), MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0);
  if (rc != MDB_SUCCESS) {
    throw not_a_backup(path, std::string("not an LMDB file (") + mdb_strerror(rc) + ")");
  }
  return env;
}

// Each realm's user id sequence (meta's user_seq keys, by key).  A restore
// keeps each where it is if the backup's is lower: an id handed out since
// the backup (a user's OpenID Connect sub) is never handed out again.
using UserSeqs = std::map<std::string, uint64_t>;
constexpr std::string_view kUserSeqKey = "\x01user_seq";

UserSeqs user_seqs_in(MDB_txn* txn) {
  UserSeqs seqs;
  MDB_dbi meta;
  if (mdb_dbi_open(txn, "meta", 0, &meta) != MDB_SUCCESS) return seqs;
  records::Cursor cur(txn, meta);
  MDB_val k{kUserSeqKey.size(), const_cast<char*>(kUserSeqKey.data())}, v;
  for (int rc = cur.get(&k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS; rc = cur.get(&k, &v, MDB_NEXT)) {
    const std::string_view key = records::view(k);
    if (key.substr(0, kUserSeqKey.size()) != kUserSeqKey) break;
    if (v.mv_size == 8) seqs[std::string(key)] = get_u64_be(static_cast<const char*>(v.mv_data));
  }
  return seqs;
}

// the backup's sequences (in txn) raised to seqs' where those are higher,
// and seqs' that the backup has not
UserSeqs later_user_seqs(MDB_txn* txn, const UserSeqs& seqs) {
  UserSeqs out = user_seqs_in(txn);
  for (const auto& [key, seq] : seqs) out[key] = std::max(out[key], seq);
  return out;
}

// The sequences of the store a restore replaces (none if it has none yet);
// one that cannot be read (a restore may be mending it) gives none, and
// says so.
UserSeqs store_user_seqs(const std::string& dir) {
  struct stat st;
  if (stat((dir + "/data.mdb").c_str(), &st) != 0) return {};
  try {
    MDB_env* raw = nullptr;
    check(mdb_env_create(&raw), "mdb_env_create");
    Env env(raw);
    check(mdb_env_set_maxdbs(raw, 64), "mdb_env_set_maxdbs");
    check(mdb_env_open(raw, dir.c_str(), MDB_RDONLY, 0), "mdb_env_open");
    TxnHandle txn(raw, MDB_RDONLY);
    return user_seqs_in(txn.get());
  } catch (const std::exception& e) {
    fprintf(stderr,
            "oauth2-admin: the store's user ids could not be read (%s): ids handed out since "
            "the backup may be handed out again\n",
            e.what());
    return {};
  }
}

// Every page the environment refers to lies inside the file: a truncated
// copy is refused here, before a read of its map beyond the end of the
// file (SIGBUS).
void check_whole(MDB_env* env, const std::string& path, uint64_t bytes) {
  MDB_envinfo info;
  MDB_stat st;
  check(mdb_env_info(env, &info), "mdb_env_info");
  check(mdb_env_stat(env, &st), "mdb_env_stat");
  const uint64_t need = (static_cast<uint64_t>(info.me_last_pgno) + 1) * st.ms_psize;
  if (bytes < need) {
    throw not_a_backup(
        path, "truncated (" + std::to_string(bytes) + " bytes of " + std::to_string(need) + ")");
  }
}

// The schema version in meta, checked as Store does: present, a number,
// not newer than this build.
unsigned long check_schema(MDB_txn* txn, const std::string& path) {
  MDB_dbi meta;
  if (mdb_dbi_open(txn, "meta", 0, &meta) != MDB_SUCCESS) {
    throw not_a_backup(path, "it has no meta database");
  }
  auto v = records::get_value(txn, meta, "schema_version", "mdb_get(schema)");
  if (!v) throw not_a_backup(path, "it has no schema version");
  std::string ver(*v);
  if (ver.empty() || ver.find_first_not_of("0123456789") != std::string::npos || ver.size() > 9) {
    throw not_a_backup(path, "its schema version " + quoted(ver) + " is not a number");
  }
  const unsigned long have = std::strtoul(ver.c_str(), nullptr, 10);
  if (have > kSchemaVersion) {
    throw not_a_backup(path, "store schema " + ver + " is newer than this build");
  }
  return have;
}

// Reads every record of the database once (each page it uses), and
// counts them against what the database says it holds; the keys go to
// *keys if given.
size_t walk(MDB_txn* txn, MDB_dbi dbi, const std::string& name, const std::string& path,
            std::vector<std::string>* keys = nullptr) {
  size_t n = 0;
  int rc = MDB_SUCCESS;
  {
    records::Cursor cur(txn, dbi);
    MDB_val k, v;
    for (rc = cur.get(&k, &v, MDB_FIRST); rc == MDB_SUCCESS; rc = cur.get(&k, &v, MDB_NEXT)) {
      n++;
      if (keys) keys->emplace_back(records::view(k));
    }
  }
  MDB_stat st;
  check(mdb_stat(txn, dbi, &st), "mdb_stat");
  if (rc != MDB_NOTFOUND || n != st.ms_entries) {
    throw not_a_backup(path, "database " + name + " is damaged (" +
                                 (rc != MDB_NOTFOUND ? mdb_strerror(rc) : "a record missing") +
                                 ")");
  }
  return n;
}

// Reads the environment of the backup at path, whole.
void read_backup(const std::string& path, BackupInfo* info) {
  Env env = open_backup_env(path);
  check_whole(env.get(), path, info->bytes);
  TxnHandle txn(env.get(), MDB_RDONLY);
  info->schema = check_schema(txn.get(), path);
  MDB_dbi meta;
  check(mdb_dbi_open(txn.get(), "meta", 0, &meta), "mdb_dbi_open(meta)");
  if (auto r = records::get_value(txn.get(), meta, kMirrorRevisionMeta, "mdb_get(revision)")) {
    info->mirror_revision = std::strtoll(std::string(*r).c_str(), nullptr, 10);
  }
  MDB_dbi main;
  check(mdb_dbi_open(txn.get(), nullptr, 0, &main), "mdb_dbi_open");
  std::vector<std::string> names;  // the main database lists the others
  walk(txn.get(), main, "(main)", path, &names);
  for (const std::string& name : names) {
    MDB_dbi dbi;
    if (name.find('\0') != std::string::npos) {
      throw not_a_backup(path, "it holds a record outside any database");
    }
    int rc = mdb_dbi_open(txn.get(), name.c_str(), 0, &dbi);
    if (rc == MDB_INCOMPATIBLE) throw not_a_backup(path, "it holds a record outside any database");
    if (rc != MDB_SUCCESS) {
      throw not_a_backup(path, "database " + quoted(name) + ": " + mdb_strerror(rc));
    }
    info->records.emplace_back(name, walk(txn.get(), dbi, name, path));
  }
}

// Opens the file at path as a store's environment and reads all of it.
// Throws std::runtime_error, saying what is wrong, for anything but a
// whole backup of a schema this build reads.
BackupInfo inspect_backup(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    throw std::runtime_error(errno_text("cannot read " + quoted(path)));
  }
  if (S_ISDIR(st.st_mode)) {
    throw std::runtime_error(quoted(path) +
                             " is a directory: name a file that oauth2-admin backup wrote");
  }
  if (!S_ISREG(st.st_mode)) throw not_a_backup(path, "not a regular file");
  if (st.st_size == 0) throw not_a_backup(path, "it is empty");
  BackupInfo info;
  info.bytes = static_cast<uint64_t>(st.st_size);
  try {
    read_backup(path, &info);
  } catch (const StoreError& e) {  // LMDB's word on the file, not the store
    throw not_a_backup(path, e.what());
  }
  return info;
}

// What both commands print of the file: its size, schema and records.
void set_info_members(json_t* out, const BackupInfo& info) {
  Json records(checked(json_object()));
  for (const auto& [name, n] : info.records) {
    set_member(records.get(), name.c_str(), checked(json_integer(static_cast<json_int_t>(n))));
  }
  set_member(out, "bytes", checked(json_integer(static_cast<json_int_t>(info.bytes))));
  set_member(out, "schema_version", checked(json_integer(static_cast<json_int_t>(info.schema))));
  set_member(out, "records", records.release());
}

// ---------------------------------------------------------------- backup

// The child of backup: opens the store (as its owner, open_store) and
// copies it to fd.  The store is left at its schema: a copy taken before
// an upgrade is the one to go back to the release before with.
int copy_store(const Invocation& inv, int fd) {
  std::unique_ptr<Store> store = open_store_unchanged(inv);
  if (!store) return fail("there is no store at " + quoted(inv.store));
  store->copy_compact(fd);
  if (fsync(fd) != 0) throw std::runtime_error(errno_text("cannot write the backup"));
  return 0;
}

// The file is made by this process, as the caller: a new file, mode 0600
// (it holds the hashes of every secret, R43), never an existing one nor
// through a link.  The store is opened by a child, which may become the
// store's owner (open_store) and so could not remove a failed copy.
int backup(const Invocation& inv) {
  const std::string& path = inv.operands[0];
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) return fail(errno_text("cannot create " + quoted(path)));
  bool ok = false;
  try {
    ok = in_store_owner_child(inv, [&] { return copy_store(inv, fd.get()); });
  } catch (...) {
    unlink(path.c_str());
    throw;
  }
  ok = close(fd.release()) == 0 && ok;
  BackupInfo info;
  try {
    if (ok) info = inspect_backup(path);  // the copy opens and reads whole
  } catch (...) {
    unlink(path.c_str());
    throw;
  }
  if (!ok) {
    unlink(path.c_str());
    return kExitFailure;
  }
  Json obj(checked(json_object()));
  set_member(obj.get(), "file", string_json(path));
  set_info_members(obj.get(), info);
  if (info.mirror_revision) {
    set_member(obj.get(), "mirror_revision",
               checked(json_integer(static_cast<json_int_t>(*info.mirror_revision))));
  }
  print_json(obj.get());
  return 0;
}

// --------------------------------------------------------------- restore

// mkdir -p, as open_store does: parents 0755 (nginx's workers pass
// through them), the store itself 0750, whatever the umask.
void make_dirs(const std::string& path, mode_t mode = 0750) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw std::runtime_error(quoted(path) + " is not a directory");
    return;
  }
  std::string::size_type slash = path.find_last_of('/', path.find_last_not_of('/'));
  if (slash != std::string::npos && slash > 0) make_dirs(path.substr(0, slash), 0755);
  if (mkdir(path.c_str(), mode) != 0) {
    if (errno == EEXIST) return;
    throw std::runtime_error(errno_text("cannot create " + quoted(path)));
  }
  if (chmod(path.c_str(), mode) != 0) {
    throw std::runtime_error(errno_text("cannot chmod " + quoted(path)));
  }
}

// The byte LMDB's processes lock (lock.mdb, offset 0): every process with
// the environment open holds it shared, so an exclusive lock says that
// none has.  Held until the restored store has been opened here first,
// which makes LMDB rebuild its lock table from the restored file.  The
// file is opened before the environment and closed after it (closing any
// descriptor of a file drops the process's locks on it).  Run as root,
// lock.mdb goes to the directory's owner, as open_store does.
Fd lock_store(int dir, const struct stat& owner, const std::string& store) {
  const std::string name = store + "/lock.mdb";
  Fd fd(openat(dir, "lock.mdb", O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0660));
  struct stat st;
  if (fd.get() < 0 || fstat(fd.get(), &st) != 0) {
    throw std::runtime_error(errno_text("cannot open " + quoted(name)));
  }
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(quoted(name) + " is not a regular file");
  const bool give = geteuid() == 0 && (st.st_uid != owner.st_uid || st.st_gid != owner.st_gid);
  if (give && st.st_nlink != 1) {  // a hard link to a file of root's
    throw std::runtime_error(quoted(name) +
                             " has other hard links: not giving it to the store's owner");
  }
  if (give && fchown(fd.get(), owner.st_uid, owner.st_gid) != 0) {
    throw std::runtime_error(errno_text("cannot chown " + quoted(name)));
  }
  struct flock lk = {};
  lk.l_type = F_WRLCK;
  lk.l_whence = SEEK_SET;
  lk.l_len = 1;
  if (fcntl(fd.get(), F_SETLK, &lk) == 0) return fd;
  if (errno != EACCES && errno != EAGAIN) {
    throw std::runtime_error(errno_text("cannot lock " + quoted(name)));
  }
  lk.l_type = F_WRLCK;
  std::string who = "another process";
  if (fcntl(fd.get(), F_GETLK, &lk) == 0 && lk.l_type != F_UNLCK) {
    who = "process " + std::to_string(lk.l_pid);
  }
  throw std::runtime_error("store " + quoted(store) + " is open in " + who +
                           " (nginx, oauth2-admin serve): stop them before a restore");
}

// Run as root on a store another user owns: become that user, as
// open_store does, so that the files made are theirs.
void become(const struct stat& owner) {
  if (geteuid() != 0 || owner.st_uid == 0) return;
  if (setgroups(1, &owner.st_gid) != 0 || setgid(owner.st_gid) != 0 || setuid(owner.st_uid) != 0 ||
      geteuid() != owner.st_uid) {
    throw std::runtime_error(errno_text("cannot switch to the owner of the store"));
  }
}

// A new file in store for a restore to write (data.mdb.restore-XXXXXX),
// its name in *tmp
Fd restore_temp(const std::string& store, std::string* tmp) {
  *tmp = store + "/data.mdb.restore-XXXXXX";
  Fd out(mkostemp(tmp->data(), O_CLOEXEC));
  if (out.get() < 0) {
    throw std::runtime_error(errno_text("cannot create a file in " + quoted(store)));
  }
  return out;
}

// Copies in (from its start) to a new file beside data.mdb, synced, with
// data.mdb's mode (0660 less the umask for a new store); its name.
std::string copy_beside(int in, const std::string& store, const struct stat* old) {
  std::string tmp;
  Fd out = restore_temp(store, &tmp);
  const mode_t mask = umask(0);
  umask(mask);
  bool ok = fchmod(out.get(), old ? old->st_mode & 0660 : 0660 & ~mask) == 0;
  char buf[1 << 16];
  off_t off = 0;
  ssize_t n = 0;
  while (ok && (n = pread(in, buf, sizeof(buf), off)) != 0) {
    if (n < 0) {
      ok = errno == EINTR;
      continue;
    }
    for (ssize_t done = 0; ok && done < n;) {
      ssize_t w = write(out.get(), buf + done, static_cast<size_t>(n - done));
      ok = w > 0 || (w < 0 && errno == EINTR);
      if (w > 0) done += w;
    }
    off += n;
  }
  ok = ok && fsync(out.get()) == 0;
  ok = close(out.release()) == 0 && ok;
  if (!ok) {
    int saved = errno;
    unlink(tmp.c_str());
    errno = saved;
    throw std::runtime_error(errno_text("cannot write " + quoted(tmp)));
  }
  return tmp;
}

// Whether the store file at path is an edge's mirror of etcd (its meta
// names what it mirrors): only its sync daemon writes it.  Read without
// LMDB's lock, for this one record; a file that does not open is no mirror.
bool is_mirror_file(const std::string& path) {
  try {
    Env env = open_backup_env(path);
    TxnHandle txn(env.get(), MDB_RDONLY);
    MDB_dbi meta;
    if (mdb_dbi_open(txn.get(), "meta", 0, &meta) != MDB_SUCCESS) return false;
    return records::get_value(txn.get(), meta, kMirrorOfMeta, "mdb_get(mirror_of)").has_value();
  } catch (const std::exception&) {
    return false;
  }
}

// The checks that change nothing: the backup opens whole; a store that
// holds data is replaced only with --force.  data.mdb's stat if it exists.
std::optional<struct stat> check_restore(const Invocation& inv, const std::string& from,
                                         BackupInfo* info) {
  *info = inspect_backup(from);
  struct stat data;
  const std::string data_path = inv.store + "/data.mdb";
  if (lstat(data_path.c_str(), &data) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) {
      throw std::runtime_error(errno_text("cannot stat " + quoted(data_path)));
    }
    return std::nullopt;
  }
  if (S_ISREG(data.st_mode) && is_mirror_file(data_path)) {
    throw std::runtime_error("store " + quoted(inv.store) +
                             " is a mirror of etcd, written only by oauth2-admin sync:"
                             " restore into the cluster with --etcd");
  }
  if (!inv.has("force") && (data.st_size > 0 || !S_ISREG(data.st_mode))) {
    throw std::runtime_error("store " + quoted(inv.store) +
                             " already holds data: restore replaces it only with --force"
                             " (stop nginx and oauth2-admin serve first)");
  }
  return data;
}

// A copy of an edge's mirror (the cluster's backup) restored as a local
// store is no mirror: what named it one, and which revision of etcd it
// had applied, goes from the copy before it becomes data.mdb (as a
// restore into the cluster leaves them out), or every write to it would
// be refused as a mirror's, and restore itself with it.  And each realm's
// user id sequence stays at least where the replaced store had it (seqs).
// The handshake key of a release before 0.9, a secret in clear, goes too
// (R86, R43): whether it did.
bool forget_mirror(const std::string& copy, const UserSeqs& seqs) {
  struct stat st;
  if (stat(copy.c_str(), &st) != 0) throw std::runtime_error(errno_text("cannot read " + copy));
  MDB_env* raw = nullptr;
  check(mdb_env_create(&raw), "mdb_env_create");
  Env env(raw);
  check(mdb_env_set_maxdbs(raw, 64), "mdb_env_set_maxdbs");
  // room for the pages a delete copies
  check(mdb_env_set_mapsize(raw, static_cast<size_t>(st.st_size) + (size_t{64} << 20)),
        "mdb_env_set_mapsize");
  check(mdb_env_open(raw, copy.c_str(), MDB_NOSUBDIR | MDB_NOLOCK, 0600), "mdb_env_open");
  TxnHandle txn(raw, 0);
  MDB_dbi meta;
  if (mdb_dbi_open(txn.get(), "meta", 0, &meta) != MDB_SUCCESS) return false;
  bool changed = false;
  for (const auto& [key, seq] : later_user_seqs(txn.get(), seqs)) {
    std::string value;
    put_u64_be(value, seq);
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v{value.size(), value.data()};
    check(mdb_put(txn.get(), meta, &k, &v, 0), "mdb_put(meta)");
    changed = true;
  }
  for (const char* name :
       {kMirrorOfMeta, kMirrorRevisionMeta, kMirrorFreshMeta, kMirrorClusterMeta}) {
    MDB_val k{std::char_traits<char>::length(name), const_cast<char*>(name)};
    int rc = mdb_del(txn.get(), meta, &k, nullptr);
    if (rc != MDB_NOTFOUND) check(rc, "mdb_del(meta)");
    changed = changed || rc == MDB_SUCCESS;
  }
  MDB_val hk{std::char_traits<char>::length(kHandshakeKeyMeta),
             const_cast<char*>(kHandshakeKeyMeta)};
  int rc = mdb_del(txn.get(), meta, &hk, nullptr);
  if (rc != MDB_NOTFOUND) check(rc, "mdb_del(meta)");
  const bool dropped_key = rc == MDB_SUCCESS;
  if (!changed && !dropped_key) return false;
  txn.commit();
  check(mdb_env_sync(raw, 1), "mdb_env_sync");
  return dropped_key;
}

// A compacting copy of the file at copy, beside it, with its mode; its
// name.  A record deleted from an LMDB file stays in the page it was on,
// which is only marked free: this copy holds the live pages alone.
std::string compact_beside(const std::string& copy, const std::string& store) {
  struct stat st;
  if (stat(copy.c_str(), &st) != 0) throw std::runtime_error(errno_text("cannot read " + copy));
  std::string tmp;
  Fd out = restore_temp(store, &tmp);
  try {
    if (fchmod(out.get(), st.st_mode & 0660) != 0) {
      throw std::runtime_error(errno_text("cannot chmod " + quoted(tmp)));
    }
    Env env = open_backup_env(copy);
    check(mdb_env_copyfd2(env.get(), out.get(), MDB_CP_COMPACT), "mdb_env_copyfd2");
    if (fsync(out.get()) != 0 || close(out.release()) != 0) {
      throw std::runtime_error(errno_text("cannot write " + quoted(tmp)));
    }
  } catch (...) {
    unlink(tmp.c_str());
    throw;
  }
  return tmp;
}

// Said when a backup held the handshake key of a release before 0.9,
// which restore leaves out of the store
void say_key_left_out(const std::string& from) {
  fprintf(stderr,
          "oauth2-admin: %s holds the handshake key of a release before 0.9 (%s): left out, "
          "a secret is never kept in clear in the store (R86); handshakes are checked with "
          "the oauth2_handshake_key file only: if its key was never taken out with "
          "oauth2-admin handshake-key extract, take it from this backup (README \"Backup and "
          "restore\")\n",
          quoted(from).c_str(), kHandshakeKeyMeta);
}

// Writes the backup (in) beside data.mdb, checks that copy and renames it
// over data.mdb; what the restored store holds.
BackupInfo put_in_place(const Invocation& inv, int in, const struct stat* old, bool* dropped_key) {
  make_dirs(inv.store);
  Fd dir(open(inv.store.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct stat owner;
  if (dir.get() < 0 || fstat(dir.get(), &owner) != 0) {
    throw std::runtime_error(errno_text("cannot open " + quoted(inv.store)));
  }
  Fd lock = lock_store(dir.get(), owner, inv.store);
  become(owner);
  const UserSeqs seqs = store_user_seqs(inv.store);
  std::string tmp = copy_beside(in, inv.store, old);
  BackupInfo info;
  try {
    *dropped_key = forget_mirror(tmp, seqs);
    if (*dropped_key) {  // not even in a free page
      std::string compact = compact_beside(tmp, inv.store);
      unlink(tmp.c_str());
      tmp = std::move(compact);
    }
    info = inspect_backup(tmp);  // the bytes about to become the store
  } catch (...) {
    unlink(tmp.c_str());
    throw;
  }
  if (rename(tmp.c_str(), (inv.store + "/data.mdb").c_str()) != 0) {
    int saved = errno;
    unlink(tmp.c_str());
    errno = saved;
    throw std::runtime_error(errno_text("cannot rename " + quoted(tmp)));
  }
  if (fsync(dir.get()) != 0) throw std::runtime_error(errno_text("cannot sync " + inv.store));
  // the first to open it, under the lock: LMDB rebuilds lock.mdb's table
  // from the restored file (its transaction ids start again)
  { Store opened(inv.store, 0, false); }
  return info;
}

// ---------------------------------------------------- into the cluster

// etcd's default --max-txn-ops is 128, its request limit 1.5 MiB
constexpr size_t kRestoreTxnOps = 100;
constexpr size_t kRestoreTxnBytes = 512 * 1024;
constexpr long kRestoreTimeoutMs = 10000;

// The etcd range of one database's records: <prefix><database>/
std::string db_range(const Etcd& etcd, const std::string& name) {
  return etcd.config().prefix + name + "/";
}

// Whether any database of the cluster holds a record (its heartbeats and
// other keys outside the databases do not count).
bool cluster_holds_records(Etcd& etcd) {
  for (size_t i = 0; i < kDbCount; i++) {
    const std::string from = db_range(etcd, db_name(static_cast<Db>(i)));
    Json req(json_pack("{s:s,s:s,s:b}", "key", base64_std(from).c_str(), "range_end",
                       base64_std(Etcd::range_end(from)).c_str(), "count_only", 1));
    Json answer = etcd.call("/v3/kv/range", req.get(), kRestoreTimeoutMs);
    if (etcd_int(answer.get(), "count") > 0) return true;
  }
  return false;
}

// Sends ops as one Txn guarded by compare, then empties both; the
// revision it made, or nullopt when a compare failed (nothing applied).
std::optional<int64_t> try_ops(Etcd& etcd, Json& compare, Json& ops, size_t* bytes) {
  Json req(checked(json_pack("{s:O,s:O}", "compare", compare.get(), "success", ops.get())));
  Json answer = etcd.call("/v3/kv/txn", req.get(), kRestoreTimeoutMs);
  compare = Json(checked(json_array()));
  ops = Json(checked(json_array()));
  *bytes = 0;
  if (!json_is_true(json_object_get(answer.get(), "succeeded"))) return std::nullopt;
  return etcd_revision(answer.get());
}

// Sends ops as one Txn, then empties it; the revision it made.
int64_t send_ops(Etcd& etcd, Json& ops, size_t* bytes) {
  Json none(checked(json_array()));
  auto revision = try_ops(etcd, none, ops, bytes);
  if (!revision) throw std::runtime_error("etcd refused a transaction of the restore");
  return *revision;
}

void append_put(Json& ops, const std::string& key, std::string_view value, size_t* bytes) {
  const std::string k = base64_std(key);
  const std::string v = base64_std(value);
  json_array_append_new(ops.get(), checked(json_pack("{s:{s:s,s:s}}", "request_put", "key",
                                                     k.c_str(), "value", v.c_str())));
  *bytes += k.size() + v.size();
}

void append_delete(Json& ops, const std::string& from, const std::string& to) {
  json_array_append_new(
      ops.get(), checked(json_pack("{s:{s:s,s:s}}", "request_delete_range", "key",
                                   base64_std(from).c_str(), "range_end", base64_std(to).c_str())));
}

// Each realm's user id sequence the cluster holds (meta's user_seq keys,
// by key), and the mod_revision of every user_seq key read.
struct ClusterSeqs {
  UserSeqs seqs;
  std::map<std::string, int64_t> mod_revisions;
};

ClusterSeqs cluster_user_seqs(Etcd& etcd) {
  const std::string meta = db_range(etcd, db_name(Db::kMeta));
  const std::string from = meta + std::string(kUserSeqKey);
  Json req(json_pack("{s:s,s:s}", "key", base64_std(from).c_str(), "range_end",
                     base64_std(Etcd::range_end(from)).c_str()));
  Json answer = etcd.call("/v3/kv/range", req.get(), kRestoreTimeoutMs);
  ClusterSeqs out;
  size_t i;
  json_t* kv;
  json_array_foreach(json_object_get(answer.get(), "kvs"), i, kv) {
    auto k = base64_decode_strict(json_string_value(json_object_get(kv, "key")) ?: "");
    auto v = base64_decode_strict(json_string_value(json_object_get(kv, "value")) ?: "");
    if (!k || k->size() <= meta.size()) continue;
    const std::string key = k->substr(meta.size());
    out.mod_revisions[key] = etcd_int(kv, "mod_revision");
    if (v && v->size() == 8) out.seqs[key] = get_u64_be(v->data());
  }
  return out;
}

// Raises each realm's user id sequence in the cluster to the backup's
// where the cluster's is lower, before anything is deleted; the delete
// then leaves the sequences alone.  So at every moment of the restore a
// user made in the cluster (oauth2_register, the API, the CLI) gets an id
// above every id of the backup and every id handed out before: the
// restore's later put of users/<id> can never land on a newcomer's id
// (whose usernames/ entry and tokens would then name the backup's user),
// and no id, a user's OpenID Connect sub, is handed out twice.  Raising
// a live sequence early is harmless (ids skip).  Each Txn compares the
// keys it writes with what was read (unchanged, or still absent), so a
// sequence raised meanwhile by a user made in the cluster is never
// lowered: read again and start over.
void raise_user_seqs(Etcd& etcd, MDB_txn* backup) {
  constexpr int kTries = 10;
  const std::string meta = db_range(etcd, db_name(Db::kMeta));
  for (int attempt = 0; attempt < kTries; attempt++) {
    const ClusterSeqs now = cluster_user_seqs(etcd);
    const UserSeqs kept = later_user_seqs(backup, now.seqs);
    Json compare(checked(json_array())), ops(checked(json_array()));
    size_t bytes = 0;
    bool raced = false;
    for (auto it = kept.begin(); it != kept.end() && !raced;) {
      const auto& [key, seq] = *it++;
      auto held = now.seqs.find(key);
      if (held == now.seqs.end() || held->second != seq) {
        auto mod = now.mod_revisions.find(key);
        const std::string rev = std::to_string(mod == now.mod_revisions.end() ? 0 : mod->second);
        json_array_append_new(
            compare.get(),
            checked(json_pack("{s:s,s:s,s:s,s:s}", "key", base64_std(meta + key).c_str(), "target",
                              "MOD", "result", "EQUAL", "mod_revision", rev.c_str())));
        std::string value;
        put_u64_be(value, seq);
        append_put(ops, meta + key, value, &bytes);
      }
      if (json_array_size(ops.get()) &&
          (json_array_size(ops.get()) >= kRestoreTxnOps || it == kept.end())) {
        raced = !try_ops(etcd, compare, ops, &bytes);
      }
    }
    if (!raced) return;
  }
  throw std::runtime_error(
      "the cluster's user id sequences changed under each of " + std::to_string(kTries) +
      " tries (users are being added): nothing was deleted; run the restore again");
}

// The order the backup's databases go in after the delete.  Every state
// the edges may serve in between is one of these, and none hands out
// anything against a half-filled cluster: the sequences are in place
// before the delete (raise_user_seqs); account locks before the users
// they lock; the name and email indexes before the users they name (a
// name that leads to no user yet is an unknown user); the token indexes
// before the tokens (a token that is in can be found, and revoked,
// through each of its indexes); and the applications last: until they
// are in, no client authenticates, so nothing is issued, granted or
// refreshed while the rest is still coming.
constexpr Db kRestoreOrder[] = {
    Db::kMeta,       Db::kAccountLocks, Db::kEmails,       Db::kUsernames, Db::kUsers,
    Db::kUserTokens, Db::kClientTokens, Db::kFamilyTokens, Db::kTokens,    Db::kClients};
static_assert(std::size(kRestoreOrder) == kDbCount, "every database, once");

// The backup's records in Txns of at most kRestoreTxnOps puts (etcd
// refuses a put and a delete of the same key in one Txn), in
// kRestoreOrder.  Left out of meta: the machine's own records, as the
// cluster's commits leave them out; the user id sequences, raised
// before; and the handshake key of a release before 0.9, a secret in
// clear (R86, R43), *dropped_key set if the backup holds it.  The last
// revision (0: none sent).
int64_t put_records(Etcd& etcd, MDB_txn* txn, bool* dropped_key) {
  int64_t revision = 0;
  Json ops(checked(json_array()));
  size_t bytes = 0;
  for (Db db : kRestoreOrder) {
    const std::string name = db_name(db);
    MDB_dbi dbi;
    if (mdb_dbi_open(txn, name.c_str(), 0, &dbi) != MDB_SUCCESS) continue;
    records::Cursor cur(txn, dbi);
    MDB_val k, v;
    for (int rc = cur.get(&k, &v, MDB_FIRST); rc == MDB_SUCCESS; rc = cur.get(&k, &v, MDB_NEXT)) {
      const std::string_view key = records::view(k);
      if (db == Db::kMeta && key == kHandshakeKeyMeta) {
        *dropped_key = true;
        continue;
      }
      if (db == Db::kMeta &&
          (local_meta(key) || key.substr(0, kUserSeqKey.size()) == kUserSeqKey)) {
        continue;
      }
      append_put(ops, db_range(etcd, name) + std::string(key), records::view(v), &bytes);
      if (json_array_size(ops.get()) >= kRestoreTxnOps || bytes >= kRestoreTxnBytes) {
        revision = send_ops(etcd, ops, &bytes);
      }
    }
  }
  if (json_array_size(ops.get())) revision = send_ops(etcd, ops, &bytes);
  return revision;
}

// The sequences raised, then one Txn deleting every database's records
// but the sequences, then the backup's records.  The last revision.
int64_t put_backup_in_cluster(Etcd& etcd, const std::string& path, bool* dropped_key) {
  Env env = open_backup_env(path);
  TxnHandle txn(env.get(), MDB_RDONLY);
  raise_user_seqs(etcd, txn.get());
  Json ops(checked(json_array()));
  size_t bytes = 0;
  for (size_t i = 0; i < kDbCount; i++) {
    const std::string from = db_range(etcd, db_name(static_cast<Db>(i)));
    if (static_cast<Db>(i) != Db::kMeta) {
      append_delete(ops, from, Etcd::range_end(from));
      continue;
    }
    const std::string seqs = from + std::string(kUserSeqKey);  // kept
    append_delete(ops, from, seqs);
    append_delete(ops, Etcd::range_end(seqs), Etcd::range_end(from));
  }
  const int64_t deleted = send_ops(etcd, ops, &bytes);
  try {
    const int64_t revision = put_records(etcd, txn.get(), dropped_key);
    return revision ? revision : deleted;
  } catch (const std::exception& e) {
    // the cluster's records are gone and only some of the backup's in:
    // the edges serve that until a restore goes through
    throw std::runtime_error(std::string(e.what()) +
                             "; the cluster now holds part of the backup only:"
                             " run the restore again with --force");
  }
}

// Read your writes, as for every other write with --etcd: where --store
// names this machine's mirror, the answer waits (Cluster::kMirrorWaitMs
// at most) until the mirror has applied revision, so that the next
// command run here sees what was restored.  Without a mirror here it
// answers at once; a mirror that does not catch up is said on stderr
// (the records are in the cluster all the same).
void wait_for_local_mirror(const Invocation& inv, int64_t revision) {
  struct stat st;
  if (lstat((inv.store + "/data.mdb").c_str(), &st) != 0) return;
  std::unique_ptr<Store> mirror;
  try {
    mirror = open_store(inv, false, MirrorUse::kAsIs);
  } catch (const std::exception& e) {
    fprintf(stderr, "oauth2-admin: restored; not waiting for a mirror: %s\n", e.what());
    return;
  }
  // (open_store with --etcd gives a mirror with its cluster, or throws)
  const long wait = mirror->cluster()->mirror_wait_ms();
  if (!mirror->cluster()->wait_for_mirror(*mirror, revision, wait)) {
    fprintf(stderr,
            "oauth2-admin: the mirror %s has not applied the restore (revision %lld) within "
            "%ld ms: is oauth2-admin sync running?\n",
            quoted(inv.store).c_str(), static_cast<long long>(revision), wait);
  }
}

// restore with --etcd: the backup checked whole as for a store, of this
// build's schema (an older one is brought up to date by a local restore
// and a new backup), then put in the cluster.  The edges' sync daemons
// apply it as any other change.
int restore_to_cluster(const Invocation& inv, const std::string& from) {
  BackupInfo info = inspect_backup(from);
  if (info.schema != kSchemaVersion) {
    throw std::runtime_error(quoted(from) + " has store schema " + std::to_string(info.schema) +
                             ", the cluster " + std::to_string(kSchemaVersion) +
                             ": restore it into a local store, back that up, and restore the"
                             " new backup");
  }
  Etcd etcd(etcd_config(inv));
  const bool held = cluster_holds_records(etcd);
  if (held && !inv.has("force")) {
    throw std::runtime_error("the cluster (etcd prefix " + quoted(inv.etcd_prefix) +
                             ") already holds records: restore replaces them only with --force");
  }
  bool dropped_key = false;
  const int64_t revision = put_backup_in_cluster(etcd, from, &dropped_key);
  if (dropped_key) say_key_left_out(from);
  wait_for_local_mirror(inv, revision);
  Json obj(checked(json_object()));
  set_member(obj.get(), "etcd_prefix", string_json(inv.etcd_prefix));
  set_member(obj.get(), "restored_from", string_json(from));
  set_member(obj.get(), "replaced", json_boolean(held));
  set_member(obj.get(), "revision", checked(json_integer(static_cast<json_int_t>(revision))));
  set_info_members(obj.get(), info);
  print_json(obj.get());
  return 0;
}

int restore(const Invocation& inv) {
  const std::string& from = inv.operands[0];
  if (!inv.etcd.empty()) return restore_to_cluster(inv, from);
  // the backup, opened as the caller, before any change of user
  Fd in(open(from.c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (in.get() < 0) return fail(errno_text("cannot open " + quoted(from)));
  BackupInfo info;
  std::optional<struct stat> old = check_restore(inv, from, &info);
  bool dropped_key = false;
  info = put_in_place(inv, in.get(), old ? &*old : nullptr, &dropped_key);
  if (dropped_key) say_key_left_out(from);
  Json obj(checked(json_object()));
  set_member(obj.get(), "store", string_json(inv.store));
  set_member(obj.get(), "restored_from", string_json(from));
  set_member(obj.get(), "replaced", json_boolean(old.has_value()));
  set_info_members(obj.get(), info);
  print_json(obj.get());
  return 0;
}

const OptionSpec kRestoreOptions[] = {
    {"force", false, false},
};

const char kBackupUsage[] =
    "usage: oauth2-admin backup <file>\n"
    "\n"
    "Copies the store (every realm) to <file>, a new file of mode 0600\n"
    "(an existing file is never overwritten: exit 1), while nginx and the\n"
    "daemon go on serving: LMDB's compacting copy, made inside one read\n"
    "transaction, holds every token and change committed before it began\n"
    "and nothing half written.  The copy is then opened and read whole.\n"
    "It holds no secret in clear, but the hashes of every secret and\n"
    "token: keep it as you keep the store.  Prints {\"file\", \"bytes\",\n"
    "\"schema_version\", \"records\": {<database>: <count>, ...}}.\n"
    "Restore it with oauth2-admin restore.\n"
    "\n"
    "With --etcd: the mirror first catches up with etcd's revision now, or\n"
    "backup fails (exit 1) naming its age: a stale copy restored later would\n"
    "bring back what the cluster deleted since.  It then prints also\n"
    "\"mirror_revision\", the etcd revision the copy holds.\n";

const char kRestoreUsage[] =
    "usage: oauth2-admin restore <file> [--force]\n"
    "\n"
    "Puts a backup made by oauth2-admin backup in place as the store\n"
    "(--store; created if missing).  The backup is checked first: an LMDB\n"
    "file, whole, every record readable, with a schema version this build\n"
    "reads; then it is written beside data.mdb, checked again and renamed\n"
    "over it.  A bad file changes nothing (exit 1).\n"
    "\n"
    "  --force    replace a store that holds data (without it: exit 1)\n"
    "\n"
    "Never while a process has the store open (nginx's workers, oauth2-admin\n"
    "serve), --force or not: stop them, restore, start them; or restore\n"
    "into a new directory, point oauth2_store at it and reload nginx.\n"
    "Prints {\"store\", \"restored_from\", \"replaced\", \"bytes\",\n"
    "\"schema_version\", \"records\"}.\n"
    "\n"
    "With --etcd: puts the backup's records in the cluster instead (every\n"
    "record under --prefix replaced, with --force when it holds any; the\n"
    "backup must have this build's schema).  Each realm's user id sequence\n"
    "is first raised to the backup's where lower, then one etcd transaction\n"
    "deletes the cluster's records (but the sequences), then the backup's\n"
    "go in transactions of 100, the applications last: the edges follow it\n"
    "as it goes, so drain them for its seconds.\n"
    "\n"
    "Either way the handshake key of a release before 0.9 (meta\n"
    "handshake_hs256_key), a secret in clear, is left out, and stderr says\n"
    "so: handshakes are checked with the oauth2_handshake_key file only.\n"
    "Prints {\"etcd_prefix\", \"restored_from\", \"replaced\", \"revision\",\n"
    "\"bytes\", \"schema_version\", \"records\"}.\n";

const Command kBackupCommands[] = {
    {"backup", "<file>", "copy the store to a new file while nginx serves", kBackupUsage, nullptr,
     0, 1, 1, backup},
    {"restore", "<file> [--force]", "put a backup in place as the store", kRestoreUsage,
     kRestoreOptions, std::size(kRestoreOptions), 1, 1, restore},
};

}  // namespace

void add_backup_commands(Commands& out) {
  for (const Command& c : kBackupCommands) out.push_back(&c);
}

}  // namespace oauth2::admin
