// Unix stream sockets with fd passing (SCM_RIGHTS): what net.Socket cannot do.
#pragma once

#include <napi.h>

namespace strata {

// unixListen(path: string, backlog: number): number
Napi::Value unix_listen(const Napi::CallbackInfo& info);
// unixConnect(path: string): number
Napi::Value unix_connect(const Napi::CallbackInfo& info);
// accept(listenFd: number): number | null
Napi::Value accept_conn(const Napi::CallbackInfo& info);
// socketpair(): [number, number]
Napi::Value socket_pair(const Napi::CallbackInfo& info);
// recvMsg(fd: number, buf: Uint8Array, maxFds: number): { bytes, fds } | null
Napi::Value recv_msg(const Napi::CallbackInfo& info);
// sendMsg(fd: number, data: Uint8Array, fds: number[]): number | null
Napi::Value send_msg(const Napi::CallbackInfo& info);

// recvMsg/sendMsg carry at most this many fds per call (GUIDE §1.6 says 32 per message;
// the shim allows a little more so the limit is the protocol's, not the shim's).
constexpr int kMaxFds = 64;


}  // namespace strata
