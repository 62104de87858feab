// Typed errors and argument helpers shared by every native file.
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <uv.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace primebuf {
namespace {

struct PoolContext;

struct AddonData {
  Napi::FunctionReference systemError;  // the TypeScript SystemError constructor
  PoolContext* pool = nullptr;          // RunOnPool's async context (owned by its cleanup hook)
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

// The pool: libuv's work queue driven directly (uv_queue_work), one uv_work_t and one promise
// per job, completed inside a callback scope of ONE async context per environment. Napi's
// AsyncWorker made a resource object, a name string, a persistent reference and an async_hooks
// context for every job: on this VM about a third of an empty job's round trip.
struct PoolContext {
  napi_env env = nullptr;
  napi_async_context async = nullptr;
  Napi::ObjectReference resource;
  size_t pending = 0;    // jobs queued whose completion has not run
  bool closing = false;  // the environment is being torn down: completions only free their job
  // An async cleanup hook holds the environment's teardown until the last job's completion ran
  // (as Node does for its own thread-pool requests), so no completion meets a freed environment.
  napi_async_cleanup_hook_handle hook = nullptr;
};

// Teardown, once no job is pending: the async context destroyed, the hook removed.
void ClosePool(PoolContext* c) {
  napi_async_destroy(c->env, c->async);
  c->resource.Reset();
  napi_remove_async_cleanup_hook(c->hook);
  delete c;
}

struct PoolJob {
  uv_work_t req;
  napi_env env;
  PoolContext* ctx;
  napi_deferred deferred;
  PoolWork work;
  PoolDone done;
  PoolResult result;
};

PoolContext* Pool(Napi::Env env);

// Nothing may throw into libuv's worker thread: an exception (std::bad_alloc building a
// message) becomes the job's error.
void PoolExecute(uv_work_t* req) {
  auto* job = static_cast<PoolJob*>(req->data);
  try {
    job->result = job->work();
  } catch (const std::exception& e) {
    job->result = PoolResult{ENOMEM, "pool job", e.what()};
  } catch (...) {
    job->result = PoolResult{EIO, "pool job", "an exception of unknown type"};
  }
}

void PoolComplete(uv_work_t* req, int status) {
  std::unique_ptr<PoolJob> job(static_cast<PoolJob*>(req->data));
  PoolContext* ctx = job->ctx;
  ctx->pending--;
  if (ctx->closing) {  // nothing to settle into; the job's references go while the env still exists
    job.reset();
    if (ctx->pending == 0) ClosePool(ctx);
    return;
  }
  Napi::Env env(job->env);
  napi_handle_scope scope = nullptr;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;  // nothing to settle into any more
  napi_callback_scope cb = nullptr;
  napi_open_callback_scope(env, ctx->resource.Value(), ctx->async, &cb);  // microtasks run when it closes
  auto reject = [&](Napi::Value e) { napi_reject_deferred(env, job->deferred, e); };
  try {
    if (status == UV_ECANCELED) {
      reject(Napi::Error::New(env, "primebuf: the pool job was cancelled").Value());
    } else if (job->result.err != 0) {
      Napi::Error e = MakeErrnoError(env, job->result.err, job->result.syscall, job->result.detail);
      for (const auto& [key, value] : job->result.props) e.Value().Set(key, Napi::Number::New(env, value));
      reject(e.Value());
    } else {
      napi_resolve_deferred(env, job->deferred, job->done ? job->done(env) : env.Undefined());
    }
  } catch (const Napi::Error& e) {
    reject(e.Value());
  } catch (...) {
    // a completion must not throw into libuv; the promise stays pending only if even rejecting failed
    try {
      reject(Napi::Error::New(env, "primebuf: a pool job's completion failed").Value());
    } catch (...) {
    }
  }
  if (cb) napi_close_callback_scope(env, cb);
  napi_close_handle_scope(env, scope);
}

PoolContext* Pool(Napi::Env env) {
  AddonData* data = Data(env);
  if (data->pool) return data->pool;
  auto ctx = std::make_unique<PoolContext>();
  ctx->env = env;
  Napi::Object resource = Napi::Object::New(env);
  ctx->resource = Napi::Persistent(resource);
  if (napi_async_init(env, resource, Napi::String::New(env, "primebuf.pool"), &ctx->async) != napi_ok)
    throw Napi::Error::New(env, "primebuf: napi_async_init failed");
  napi_status st = napi_add_async_cleanup_hook(
      env,
      [](napi_async_cleanup_hook_handle, void* arg) {
        auto* c = static_cast<PoolContext*>(arg);
        c->closing = true;
        if (c->pending == 0) ClosePool(c);
      },
      ctx.get(), &ctx->hook);
  if (st != napi_ok) {
    napi_async_destroy(env, ctx->async);
    throw Napi::Error::New(env, "primebuf: napi_add_async_cleanup_hook failed");
  }
  data->pool = ctx.release();
  return data->pool;
}


// poolSleep(ms) -> Promise<void>: usleep on the pool. A test of the mechanism itself (the JS
// thread keeps running while a pool thread blocks); listed with the test-only natives.
Napi::Value PoolSleep(const Napi::CallbackInfo& info) {
  uint32_t ms = ArgU32(info, 0, "ms");
  return RunOnPool(info.Env(), "primebuf.poolSleep", [ms]() {
    if (ms > 0) usleep(static_cast<useconds_t>(ms) * 1000);  // 0: the bare round trip
    return PoolResult{};
  });
}

}  // namespace

Napi::Promise RunOnPool(Napi::Env env, const char* name, PoolWork work, PoolDone done) {
  (void)name;  // one async context serves every job (PoolContext)
  PoolContext* ctx = Pool(env);
  auto job = std::make_unique<PoolJob>();
  job->req.data = job.get();
  job->env = env;
  job->ctx = ctx;
  job->work = std::move(work);
  job->done = std::move(done);
  napi_value promise;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) throw Napi::Error::New(env, "primebuf: napi_create_promise failed");
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  int rc = uv_queue_work(loop, &job->req, PoolExecute, PoolComplete);
  if (rc != 0) {
    napi_reject_deferred(env, job->deferred, Napi::Error::New(env, std::string("uv_queue_work failed: ") + uv_strerror(rc)).Value());
    return Napi::Promise(env, promise);
  }
  ctx->pending++;
  job.release();  // PoolComplete owns it
  return Napi::Promise(env, promise);
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
