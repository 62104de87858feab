// A session through libseat (seatd, logind): mechanism only. `new Libseat(backend)` opens the
// seat (LIBSEAT_BACKEND set to `backend` for the call when given); libseat's enable/disable
// callbacks only queue an event here (they fire inside libseat_open_seat, _open_device,
// _close_device and _dispatch): JS takes them with takeEvents() after each call, so no JS runs
// inside libseat. The seat's fd is watched on the Node loop by TypeScript (FdWatch) and
// dispatch() is libseat_dispatch(seat, 0): it never blocks. libseat's log goes to a process-wide
// buffer that takeLog() empties (errors name what libseat tried).
//
// Ownership: each fd openDevice() returned is owned here until closeDevice(fd) (libseat_close_device,
// then close(2)) or close() (every device still open, then libseat_close_seat): released once.
extern "C" {
#include <libseat.h>  // no extern "C" of its own in 0.7
}
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "common.h"

namespace primebuf {
namespace {

struct LogLine {
  int level;
  std::string text;
};

// libseat has one log handler per process; lines wait here for takeLog() (bounded).
std::vector<LogLine> g_log;

void OnLog(enum libseat_log_level level, const char* fmt, va_list args) {
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, args);
  if (g_log.size() >= 200) g_log.erase(g_log.begin());
  g_log.push_back({static_cast<int>(level), buf});
}

void InstallLog() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  libseat_set_log_handler(OnLog);
  // INFO: libseat says which backend opened the seat ("Seat opened with backend '...'")
  libseat_set_log_level(LIBSEAT_LOG_LEVEL_INFO);
}

std::string LogTail() {
  std::string out;
  for (const auto& l : g_log) {
    if (l.level > LIBSEAT_LOG_LEVEL_INFO) continue;
    if (!out.empty()) out += "; ";
    out += l.text;
  }
  return out;
}

class Libseat : public Napi::ObjectWrap<Libseat> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Libseat",
                       {InstanceAccessor<&Libseat::Fd>("fd"), InstanceAccessor<&Libseat::SeatName>("seatName"),
                        InstanceAccessor<&Libseat::Closed>("closed"), InstanceAccessor<&Libseat::DeviceCount>("deviceCount"),
                        InstanceMethod<&Libseat::Dispatch>("dispatch"), InstanceMethod<&Libseat::TakeEvents>("takeEvents"),
                        InstanceMethod<&Libseat::OpenDevice>("openDevice"), InstanceMethod<&Libseat::CloseDevice>("closeDevice"),
                        InstanceMethod<&Libseat::DisableSeat>("disableSeat"),
                        InstanceMethod<&Libseat::SwitchSession>("switchSession"), InstanceMethod<&Libseat::Close>("close")});
  }

  Libseat(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Libseat>(info) {
    Napi::Env env = info.Env();
    InstallLog();
    std::string backend;
    bool withBackend = info.Length() > 0 && info[0].IsString();
    if (withBackend) backend = info[0].As<Napi::String>().Utf8Value();
    // LIBSEAT_BACKEND is how libseat is told which backend to use: set for this call only
    const char* prev = getenv("LIBSEAT_BACKEND");
    std::string saved = prev ? prev : "";
    if (withBackend) setenv("LIBSEAT_BACKEND", backend.c_str(), 1);
    errno = 0;
    seat_ = libseat_open_seat(&kListener, this);
    int err = errno;
    if (withBackend) {
      if (prev) setenv("LIBSEAT_BACKEND", saved.c_str(), 1);
      else unsetenv("LIBSEAT_BACKEND");
    }
    if (!seat_) ThrowErrno(env, err ? err : ENOSYS, "libseat_open_seat", (withBackend ? "backend " + backend : std::string("any backend")) + (LogTail().empty() ? "" : ": " + LogTail()));
  }

  ~Libseat() override { CloseAll(); }

 private:
  static void OnEnable(struct libseat*, void* data) { static_cast<Libseat*>(data)->events_.push_back(true); }
  static void OnDisable(struct libseat*, void* data) { static_cast<Libseat*>(data)->events_.push_back(false); }
  static constexpr struct libseat_seat_listener kListener = {OnEnable, OnDisable};

  void CloseAll() {
    if (!seat_) return;
    for (const auto& [fd, id] : devices_) {
      libseat_close_device(seat_, id);
      close(fd);
    }
    devices_.clear();
    libseat_close_seat(seat_);
    seat_ = nullptr;
  }

  void AssertOpen(Napi::Env env) {
    if (!seat_) ThrowErrno(env, EBADF, "libseat", "the seat is closed");
  }

  Napi::Value Fd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), seat_ ? libseat_get_fd(seat_) : -1);
  }
  Napi::Value SeatName(const Napi::CallbackInfo& info) {
    const char* n = seat_ ? libseat_seat_name(seat_) : nullptr;
    return Napi::String::New(info.Env(), n ? n : "");
  }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), seat_ == nullptr); }
  Napi::Value DeviceCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(devices_.size())); }

  // dispatch() -> events dispatched (libseat_dispatch with timeout 0: never blocks)
  Napi::Value Dispatch(const Napi::CallbackInfo& info) {
    AssertOpen(info.Env());
    int n = libseat_dispatch(seat_, 0);
    if (n < 0) ThrowErrno(info.Env(), errno ? errno : EIO, "libseat_dispatch", LogTail());
    return Napi::Number::New(info.Env(), n);
  }

  // takeEvents() -> ['enable' | 'disable', ...] queued by libseat's callbacks since the last call
  Napi::Value TakeEvents(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env, events_.size());
    for (size_t i = 0; i < events_.size(); i++) out.Set(static_cast<uint32_t>(i), Napi::String::New(env, events_[i] ? "enable" : "disable"));
    events_.clear();
    return out;
  }

  // openDevice(path) -> { id, fd }: the fd is owned here until closeDevice(fd) or close()
  Napi::Value OpenDevice(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string path = ArgString(info, 0, "path");
    AssertOpen(env);
    int fd = -1;
    errno = 0;
    int id = libseat_open_device(seat_, path.c_str(), &fd);
    if (id < 0) {
      int err = errno ? errno : EIO;
      ThrowErrno(env, err, "libseat_open_device", path + (LogTail().empty() ? "" : ": " + LogTail()));
    }
    devices_[fd] = id;
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", id);
    o.Set("fd", fd);
    return o;
  }

  // closeDevice(fd) -> 0, or libseat_close_device's errno (the fd is closed either way)
  Napi::Value CloseDevice(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = ArgFd(info, 0, "fd");
    auto it = devices_.find(fd);
    if (!seat_ || it == devices_.end()) ThrowErrno(env, EBADF, "libseat_close_device", "fd " + std::to_string(fd) + " is not a device of this seat");
    int id = it->second;
    devices_.erase(it);
    int err = 0;
    if (libseat_close_device(seat_, id) < 0) err = errno ? errno : EIO;
    close(fd);
    return Napi::Number::New(env, err);
  }

  // disableSeat(): libseat_disable_seat, the ack of a disable
  Napi::Value DisableSeat(const Napi::CallbackInfo& info) {
    AssertOpen(info.Env());
    if (libseat_disable_seat(seat_) < 0) ThrowErrno(info.Env(), errno ? errno : EIO, "libseat_disable_seat", LogTail());
    return info.Env().Undefined();
  }

  Napi::Value SwitchSession(const Napi::CallbackInfo& info) {
    int n = ArgI32(info, 0, "session");
    AssertOpen(info.Env());
    if (libseat_switch_session(seat_, n) < 0) ThrowErrno(info.Env(), errno ? errno : EINVAL, "libseat_switch_session", "session " + std::to_string(n));
    return info.Env().Undefined();
  }

  // close(): every device still open (libseat_close_device, close), then libseat_close_seat; idempotent
  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseAll();
    return info.Env().Undefined();
  }

  struct libseat* seat_ = nullptr;
  std::vector<bool> events_;
  std::map<int, int> devices_;  // fd -> libseat device id (seatd gives one id to two opens of a path)
};

// takeLog() -> [{ level, text }]: libseat's log lines since the last call
Napi::Value TakeLog(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, g_log.size());
  for (size_t i = 0; i < g_log.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("level", g_log[i].level);
    o.Set("text", g_log[i].text);
    out.Set(static_cast<uint32_t>(i), o);
  }
  g_log.clear();
  return out;
}

}  // namespace

void InitSession(Napi::Env env, Napi::Object exports) {
  exports.Set("Libseat", Libseat::Define(env));
  exports.Set("libseatTakeLog", Napi::Function::New(env, TakeLog, "libseatTakeLog"));
}

}  // namespace primebuf
