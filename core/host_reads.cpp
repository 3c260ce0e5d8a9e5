#include "core/host_reads.h"

#include "core/error.h"

namespace pacer {

namespace {
thread_local const char* t_forbidden_by = nullptr;
}  // namespace

ForbidHostReads::ForbidHostReads(const char* why) : prev_(t_forbidden_by) { t_forbidden_by = why; }
ForbidHostReads::~ForbidHostReads() { t_forbidden_by = prev_; }

AllowHostReads::AllowHostReads() : prev_(t_forbidden_by) { t_forbidden_by = nullptr; }
AllowHostReads::~AllowHostReads() { t_forbidden_by = prev_; }

void check_host_read(const char* what) {
  PACER_CHECK(t_forbidden_by == nullptr,
              "{}: reading a tensor's value on the host is not allowed during {} (the value would be frozen "
              "into every replay); keep the value on the device as a tensor, or read it outside the captured step",
              what, t_forbidden_by);
}

}  // namespace pacer
