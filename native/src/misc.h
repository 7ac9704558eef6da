// Small syscalls Node lacks: a fence, eventfd, memfd_create, fallocate's hole modes.
#pragma once

#include <napi.h>

namespace strata {

// fence(): void
Napi::Value fence(const Napi::CallbackInfo& info);
// eventfd(initval: number, nonblock: boolean): number
Napi::Value event_fd(const Napi::CallbackInfo& info);
// memfdCreate(name: string, sizeBytes: number): number
Napi::Value memfd_create_sized(const Napi::CallbackInfo& info);
// fallocate(fd: number, mode: 'punch-hole' | 'zero-range', offsetBytes: number, lengthBytes: number): void
Napi::Value fallocate_range(const Napi::CallbackInfo& info);
// setMallocMmapThreshold(bytes: number): void
Napi::Value set_malloc_mmap_threshold(const Napi::CallbackInfo& info);

}  // namespace strata
