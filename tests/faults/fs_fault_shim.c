// Disk-fault injection for tests, loaded with LD_PRELOAD: makes writes (write, pwrite,
// writev) or fsyncs fail with a chosen errno when the file's path contains a chosen
// substring. Covers every writer in the process that calls libc through the dynamic
// linker: ganserve's own files (WriteFileAtomic) and SQLite's database and journal.
//
// Rules come from the file named by $GANSERVE_FAULTS, re-read on every intercepted
// call, so a test switches faults on and off by rewriting it; no file or an empty one
// means no faults. One rule per line:
//
//   ENOSPC write /checkpoints/      (errno name, operation: write | fsync | any, substring)
//
// Each injected fault appends "OP ERRNO PATH" to $GANSERVE_FAULTS.fired, so a test can
// check that its fault was hit. Without $GANSERVE_FAULTS every call passes through.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void*, size_t);
typedef ssize_t (*pwrite_fn)(int, const void*, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec*, int);
typedef int (*fsync_fn)(int);

static __thread int in_shim;

static void* Next(const char* name) { return dlsym(RTLD_NEXT, name); }

static int ErrnoByName(const char* name) {
  if (strcmp(name, "ENOSPC") == 0) return ENOSPC;
  if (strcmp(name, "EIO") == 0) return EIO;
  if (strcmp(name, "EDQUOT") == 0) return EDQUOT;
  if (strcmp(name, "EROFS") == 0) return EROFS;
  return 0;
}

// Reads the rules with raw system calls (never through the intercepted functions).
static size_t ReadRules(const char* path, char* buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t n = 0;
  while (n + 1 < cap) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  return n;
}

static void Fired(const char* control, const char* op, const char* err, const char* path) {
  char log_path[4096];
  snprintf(log_path, sizeof(log_path), "%s.fired", control);
  int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  char line[4200];
  int len = snprintf(line, sizeof(line), "%s %s %s\n", op, err, path);
  if (len > 0) ((write_fn)Next("write"))(fd, line, (size_t)len);
  close(fd);
}

// The errno to fail `op` on `fd` with, or 0.
static int FaultFor(int fd, const char* op) {
  const char* control = getenv("GANSERVE_FAULTS");
  if (control == NULL || in_shim) return 0;
  in_shim = 1;
  int result = 0;
  char rules[8192];
  if (ReadRules(control, rules, sizeof(rules)) > 0) {
    char link[64], path[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n > 0) {
      path[n] = '\0';
      char* save = NULL;
      for (char* line = strtok_r(rules, "\n", &save); line != NULL && result == 0; line = strtok_r(NULL, "\n", &save)) {
        char err[32], rule_op[16], needle[4096];
        if (sscanf(line, "%31s %15s %4095s", err, rule_op, needle) != 3) continue;
        if (strcmp(rule_op, "any") != 0 && strcmp(rule_op, op) != 0) continue;
        if (strstr(path, needle) == NULL) continue;
        result = ErrnoByName(err);
        if (result != 0) Fired(control, op, err, path);
      }
    }
  }
  in_shim = 0;
  return result;
}

ssize_t write(int fd, const void* buf, size_t count) {
  int e = FaultFor(fd, "write");
  if (e != 0) {
    errno = e;
    return -1;
  }
  return ((write_fn)Next("write"))(fd, buf, count);
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  int e = FaultFor(fd, "write");
  if (e != 0) {
    errno = e;
    return -1;
  }
  return ((pwrite_fn)Next("pwrite"))(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void* buf, size_t count, off_t offset) {
  int e = FaultFor(fd, "write");
  if (e != 0) {
    errno = e;
    return -1;
  }
  return ((pwrite_fn)Next("pwrite64"))(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  int e = FaultFor(fd, "write");
  if (e != 0) {
    errno = e;
    return -1;
  }
  return ((writev_fn)Next("writev"))(fd, iov, iovcnt);
}

int fsync(int fd) {
  int e = FaultFor(fd, "fsync");
  if (e != 0) {
    errno = e;
    return -1;
  }
  return ((fsync_fn)Next("fsync"))(fd);
}

int fdatasync(int fd) {
  int e = FaultFor(fd, "fsync");
  if (e != 0) {
    errno = e;
    return -1;
  }
  return ((fsync_fn)Next("fdatasync"))(fd);
}
