// Unix stream sockets with SCM_RIGHTS fd passing. Every fd the shim creates is CLOEXEC; every
// socket it returns is O_NONBLOCK, so the Poller drives it. Expected conditions are values
// (EAGAIN → null, EOF → bytes 0); everything else throws a SystemError-shaped Error.
#include "socket.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "addon.h"
#include "errno_error.h"

namespace strata {
namespace {

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// Control buffer big enough for kMaxFds fds, aligned for cmsghdr.
union ControlBuffer {
  cmsghdr align;
  char bytes[CMSG_SPACE(sizeof(int) * kMaxFds)];
};

bool socket_path(const Args& args, std::string* path, sockaddr_un* addr) {
  if (!args.string(0, "path", sizeof(addr->sun_path) - 1, path)) return false;
  if (path->empty()) return args.range_error("path", "a non-empty string");
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  std::memcpy(addr->sun_path, path->data(), path->size());
  return true;
}

// Closes fd without disturbing the errno being reported.
Napi::Value fail(Napi::Env env, int fd, const char* syscall, const char* path = nullptr) {
  int err = errno;
  if (fd >= 0) close(fd);
  return throw_errno(env, syscall, err, nullptr, path);
}

}  // namespace

// unixListen(path: string, backlog: number): number
Napi::Value unix_listen(const Napi::CallbackInfo& info) {
  Args args(info, "unixListen");
  Napi::Env env = info.Env();
  std::string path;
  sockaddr_un addr;
  int64_t backlog = 0;
  if (!socket_path(args, &path, &addr) || !args.integer(1, "backlog", 0, INT32_MAX, &backlog)) {
    return env.Undefined();
  }
  // A socket file left by a previous run makes bind fail with EADDRINUSE; remove it, as
  // libvhost-user's examples do. Anything that is not a socket is left alone (bind reports it).
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && unlink(path.c_str()) < 0 && errno != ENOENT) {
    return fail(env, -1, "unlink", path.c_str());
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(env, -1, "socket");
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) return fail(env, fd, "bind", path.c_str());
  if (listen(fd, static_cast<int>(backlog)) < 0) return fail(env, fd, "listen", path.c_str());
  return Napi::Number::New(env, fd);
}

// unixConnect(path: string): number
Napi::Value unix_connect(const Napi::CallbackInfo& info) {
  Args args(info, "unixConnect");
  Napi::Env env = info.Env();
  std::string path;
  sockaddr_un addr;
  if (!socket_path(args, &path, &addr)) return env.Undefined();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(env, -1, "socket");
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    if (errno != EINTR) return fail(env, fd, "connect", path.c_str());
    // An interrupted blocking connect goes on asynchronously (connect(2)): wait for it.
    pollfd pfd = {fd, POLLOUT, 0};
    while (poll(&pfd, 1, -1) < 0) {
      if (errno != EINTR) return fail(env, fd, "poll");
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return fail(env, fd, "getsockopt");
    if (err != 0) {
      errno = err;
      return fail(env, fd, "connect", path.c_str());
    }
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return fail(env, fd, "fcntl");
  return Napi::Number::New(env, fd);
}

// accept(listenFd: number): number | null
Napi::Value accept_conn(const Napi::CallbackInfo& info) {
  Args args(info, "accept");
  Napi::Env env = info.Env();
  int listen_fd = -1;
  if (!args.fd(0, "listenFd", &listen_fd)) return env.Undefined();
  for (;;) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return Napi::Number::New(env, fd);
    // ECONNABORTED: that peer gave up before we accepted; try the next one (libuv does too).
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (would_block(errno)) return env.Null();
    return fail(env, -1, "accept4");
  }
}

// socketpair(): [number, number]
Napi::Value socket_pair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) return fail(env, -1, "socketpair");
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(uint32_t{0}, Napi::Number::New(env, fds[0]));
  pair.Set(uint32_t{1}, Napi::Number::New(env, fds[1]));
  return pair;
}

// recvMsg(fd: number, buf: Uint8Array, maxFds: number): { bytes, fds } | null
Napi::Value recv_msg(const Napi::CallbackInfo& info) {
  Args args(info, "recvMsg");
  Napi::Env env = info.Env();
  int fd = -1;
  uint8_t* data = nullptr;
  size_t length = 0;
  int64_t max_fds = 0;
  if (!args.fd(0, "fd", &fd) || !args.bytes(1, "buf", &data, &length) ||
      !args.integer(2, "maxFds", 0, kMaxFds, &max_fds)) {
    return env.Undefined();
  }
  // A zero-length read returns 0, which would be indistinguishable from EOF.
  if (length == 0) return args.range_error("buf", "non-empty"), env.Undefined();

  ControlBuffer control;
  iovec iov = {data, length};
  msghdr msg;
  std::memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (max_fds > 0) {
    msg.msg_control = control.bytes;
    // CMSG_LEN, not CMSG_SPACE: the kernel fits (controllen - sizeof(cmsghdr)) / sizeof(int)
    // fds, and CMSG_SPACE's padding would let one more than maxFds through.
    msg.msg_controllen = CMSG_LEN(sizeof(int) * static_cast<size_t>(max_fds));
  }
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return would_block(errno) ? env.Null() : fail(env, -1, "recvmsg");

  int fds[kMaxFds];
  int64_t count = 0;
  bool overflow = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0)) continue;
    size_t in_cmsg = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t j = 0; j < in_cmsg; j++) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
      if (count < max_fds) {
        fds[count++] = received;
      } else {  // cannot happen with the exact controllen above; never leak an fd if it does
        close(received);
        overflow = true;
      }
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0 || overflow) {
    // The kernel dropped the fds that did not fit: the message is unusable, so close the ones
    // that arrived rather than hand back a partial set. The bytes read are lost too; the
    // caller treats this as a connection error.
    for (int64_t i = 0; i < count; i++) close(fds[i]);
    return throw_errno(env, "recvmsg", EMSGSIZE, "ECTRUNC");
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("bytes", Napi::Number::New(env, static_cast<double>(n)));
  if (count == 0) {
    result.Set("fds", addon_data(env)->empty_fds.Value());
  } else {
    Napi::Array list = Napi::Array::New(env, static_cast<size_t>(count));
    for (int64_t i = 0; i < count; i++) list.Set(static_cast<uint32_t>(i), Napi::Number::New(env, fds[i]));
    result.Set("fds", list);
  }
  return result;
}

// sendMsg(fd: number, data: Uint8Array, fds: number[]): number | null
Napi::Value send_msg(const Napi::CallbackInfo& info) {
  Args args(info, "sendMsg");
  Napi::Env env = info.Env();
  int fd = -1;
  uint8_t* data = nullptr;
  size_t length = 0;
  Napi::Array list;
  if (!args.fd(0, "fd", &fd) || !args.bytes(1, "data", &data, &length) || !args.array(2, "fds", &list)) {
    return env.Undefined();
  }
  uint32_t nfds = list.Length();
  if (nfds > kMaxFds) return args.range_error("fds", "at most 64 fds long"), env.Undefined();
  // On a stream socket the fds travel with the first byte: without a byte they are not sent.
  if (nfds > 0 && length == 0) return args.range_error("data", "non-empty when fds are sent"), env.Undefined();

  ControlBuffer control;
  iovec iov = {data, length};
  msghdr msg;
  std::memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    std::memset(&control, 0, sizeof(control));
    msg.msg_control = control.bytes;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    for (uint32_t i = 0; i < nfds; i++) {
      Napi::Value v = list.Get(i);
      if (env.IsExceptionPending()) return env.Undefined();
      int64_t value = 0;
      if (!args.integer_of(v, "fds[]", 0, INT32_MAX, &value)) return env.Undefined();
      int out = static_cast<int>(value);
      std::memcpy(CMSG_DATA(c) + i * sizeof(int), &out, sizeof(int));
    }
  }
  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return would_block(errno) ? env.Null() : fail(env, -1, "sendmsg");
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace strata
