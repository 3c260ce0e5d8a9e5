#pragma once
/// Host reads of tensor values (item, to_vector) are refused while a graph is being
/// captured: a captured step replays kernels, not host code, so a value read on the host
/// during capture would be frozen into every replay. The graph capture (ops/graph) turns
/// the refusal on; the dispatcher turns it off while an op's own checks and kernel run.

namespace pacer {

/// Refuses host reads in this thread for the guard's lifetime, naming `why` in the error.
class ForbidHostReads {
 public:
  explicit ForbidHostReads(const char* why);
  ~ForbidHostReads();
  ForbidHostReads(const ForbidHostReads&) = delete;
  ForbidHostReads& operator=(const ForbidHostReads&) = delete;

 private:
  const char* prev_;
};

/// Allows host reads again for the guard's lifetime (an op's checks and kernel).
class AllowHostReads {
 public:
  AllowHostReads();
  ~AllowHostReads();
  AllowHostReads(const AllowHostReads&) = delete;
  AllowHostReads& operator=(const AllowHostReads&) = delete;

 private:
  const char* prev_;
};

/// Throws when host reads are refused in this thread; `what` names the read (item, to_vector).
void check_host_read(const char* what);

}  // namespace pacer
