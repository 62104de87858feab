// Typed errors and argument helpers shared by every native file.
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace primebuf {
namespace {

struct AddonData {
  Napi::FunctionReference systemError;  // the TypeScript SystemError constructor
};

AddonData* Data(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

Napi::Value SetErrorClasses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "setErrorClasses: expected an object");
  Napi::Object classes = info[0].As<Napi::Object>();
  Napi::Value se = classes.Get("SystemError");
  if (!se.IsFunction()) throw Napi::TypeError::New(env, "setErrorClasses: SystemError must be a class");
  Data(env)->systemError = Napi::Persistent(se.As<Napi::Function>());
  return env.Undefined();
}

// closeFd(fd): close(2); EINTR counts as closed (Linux always releases the fd).
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  if (close(fd) != 0 && errno != EINTR) ThrowErrno(info.Env(), errno, "close", "fd " + std::to_string(fd));
  return info.Env().Undefined();
}

// dupFd(fd) -> new fd with FD_CLOEXEC (F_DUPFD_CLOEXEC).
Napi::Value DupFd(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int out = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (out < 0) ThrowErrno(info.Env(), errno, "fcntl(F_DUPFD_CLOEXEC)", "fd " + std::to_string(fd));
  return Napi::Number::New(info.Env(), out);
}

// countOpenFds() -> entries in /proc/self/fd (for leak checks in tests).
Napi::Value CountOpenFds(const Napi::CallbackInfo& info) {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (struct dirent* e = readdir(d)) if (e->d_name[0] != '.') n++;
    closedir(d);
    n -= 1;  // the directory stream's own fd
  } else {
    ThrowErrno(info.Env(), errno, "opendir", "/proc/self/fd");
  }
  return Napi::Number::New(info.Env(), n);
}

Napi::Value ErrnoNameJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ErrnoName(ArgI32(info, 0, "errno")));
}

}  // namespace

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  if (name) return name;
  static thread_local char buf[16];
  snprintf(buf, sizeof buf, "E%d", err);
  return buf;
}

Napi::Error MakeErrnoError(Napi::Env env, int err, const char* syscall, const std::string& detail) {
  std::string code = ErrnoName(err);
  std::string message = std::string(syscall) + " failed: " + code + " (" + strerror(err) + ")";
  if (!detail.empty()) message += ": " + detail;
  AddonData* data = Data(env);
  if (data && !data->systemError.IsEmpty()) {
    Napi::Object opts = Napi::Object::New(env);
    opts.Set("code", code);
    opts.Set("errno", Napi::Number::New(env, err));
    opts.Set("syscall", syscall);
    opts.Set("detail", detail);
    Napi::Object obj = data->systemError.New({Napi::String::New(env, message), opts});
    return Napi::Error(env, obj);
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", code);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", syscall);
  return e;
}

void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& detail) {
  throw MakeErrnoError(env, err, syscall, detail);
}

static Napi::Value Arg(const Napi::CallbackInfo& info, size_t i, const char* name, bool (Napi::Value::*is)() const,
                       const char* what) {
  Napi::Value v = info[i];
  if (!(v.*is)()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be " + what);
  return v;
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless || x > UINT32_MAX) throw Napi::RangeError::New(info.Env(), std::string(name) + " out of u32 range");
    return static_cast<uint32_t>(x);
  }
  double d = Arg(info, i, name, &Napi::Value::IsNumber, "a number").As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer in [0, 2^32)");
  return static_cast<uint32_t>(d);
}

int32_t ArgI32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double d = Arg(info, i, name, &Napi::Value::IsNumber, "a number").As<Napi::Number>().DoubleValue();
  if (!(d >= INT32_MIN && d <= INT32_MAX) || d != static_cast<double>(static_cast<int64_t>(d)))
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be a 32-bit integer");
  return static_cast<int32_t>(d);
}

uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(info.Env(), std::string(name) + " out of u64 range");
    return x;
  }
  double d = Arg(info, i, name, &Napi::Value::IsNumber, "a bigint or number").As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be a non-negative safe integer or a bigint");
  return static_cast<uint64_t>(d);
}

int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* name) {
  int32_t fd = ArgI32(info, i, name);
  if (fd < 0) throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an open file descriptor");
  return fd;
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return Arg(info, i, name, &Napi::Value::IsString, "a string").As<Napi::String>().Utf8Value();
}

Napi::BigInt U64(Napi::Env env, uint64_t v) { return Napi::BigInt::New(env, v); }

namespace {

class PoolTask : public Napi::AsyncWorker {
 public:
  PoolTask(Napi::Env env, const char* name, PoolWork work, PoolDone done)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)) {}
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override { result_ = work_(); }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (result_.err != 0) {
      Napi::Error e = MakeErrnoError(env, result_.err, result_.syscall, result_.detail);
      for (const auto& [key, value] : result_.props) e.Value().Set(key, Napi::Number::New(env, value));
      deferred_.Reject(e.Value());
      return;
    }
    if (!done_) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    try {
      deferred_.Resolve(done_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  PoolWork work_;
  PoolDone done_;
  PoolResult result_;
};

// poolSleep(ms) -> Promise<void>: usleep on the pool. A test of the mechanism itself (the JS
// thread keeps running while a pool thread blocks); listed with the test-only natives.
Napi::Value PoolSleep(const Napi::CallbackInfo& info) {
  uint32_t ms = ArgU32(info, 0, "ms");
  return RunOnPool(info.Env(), "primebuf.poolSleep", [ms]() {
    usleep(static_cast<useconds_t>(ms) * 1000);
    return PoolResult{};
  });
}

}  // namespace

Napi::Promise RunOnPool(Napi::Env env, const char* name, PoolWork work, PoolDone done) {
  auto* task = new PoolTask(env, name, std::move(work), std::move(done));  // deletes itself when done
  Napi::Promise p = task->Promise();
  task->Queue();
  return p;
}

void InitCommon(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  exports.Set("setErrorClasses", Napi::Function::New(env, SetErrorClasses, "setErrorClasses"));
  exports.Set("errnoName", Napi::Function::New(env, ErrnoNameJs, "errnoName"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("dupFd", Napi::Function::New(env, DupFd, "dupFd"));
  exports.Set("countOpenFds", Napi::Function::New(env, CountOpenFds, "countOpenFds"));
  exports.Set("poolSleep", Napi::Function::New(env, PoolSleep, "poolSleep"));
}

}  // namespace primebuf
