// Input mechanism: libinput (devices through udev on a seat, or explicit paths) and
// libxkbcommon (keymap from RMLVO names, key state). No policy: events become plain JS objects
// in libinput's order; what they mean for a seat is decided in TypeScript (src/input/).
//
//   new InputContext({ seat?, devices?, keymap?: {rules, model, layout, variant, options},
//                      opener?: { open(path, flags) -> fd, close(fd) } })
//     .fd            libinput's epoll fd (watched on the Node loop by src/input with FdWatch)
//     .keymap        xkb_keymap_get_as_string(XKB_KEYMAP_FORMAT_TEXT_V1)
//     .dispatch()    libinput_dispatch, then every queued event converted: an array (one batch)
//     .suspend() / .resume() / .close()  (close idempotent: releases libinput, udev, xkb, every fd)
//   new KeyState(names)   the same xkb keymap and state without devices: .keymap, .key(code, pressed)
//
// open_restricted/close_restricted call the JS opener synchronously: libinput calls them only
// from inside the methods above (assign_seat, path_add_device, dispatch, resume, unref), which
// run on the JS thread. Without an opener: open(2) with O_CLOEXEC, close(2).
#include <fcntl.h>
#include <libinput.h>
#include <libudev.h>
#include <unistd.h>
#include <xkbcommon/xkbcommon.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "common.h"

namespace primebuf {
namespace {

// An error the TypeScript layer turns into its typed class (src/input/errors.ts): `inputKind`
// names what failed ('keymap', 'udev', 'seat', 'device', 'resume'), `log` carries the library's
// own messages when it gave any.
[[noreturn]] void ThrowInput(Napi::Env env, const char* kind, const std::string& message, const std::string& log = "",
                             int err = 0, const std::string& path = "") {
  Napi::Error e = Napi::Error::New(env, message);
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  e.Set("inputKind", Napi::String::New(env, kind));
  if (!log.empty()) e.Set("log", Napi::String::New(env, log));
  if (err) {
    e.Set("errno", Napi::Number::New(env, err));
    e.Set("code", Napi::String::New(env, ErrnoName(err)));
  }
  throw e;
}

// ---------------------------------------------------------------------------------------------
// xkbcommon: a context, a keymap compiled from names, and its state.

struct Xkb {
  xkb_context* ctx = nullptr;
  xkb_keymap* keymap = nullptr;
  xkb_state* state = nullptr;
  std::string log;  // xkbcommon's messages while compiling (the reason a layout is refused)
  std::string text;
  // the serialized modifiers last reported, to tell when a key changed them
  uint32_t depressed = 0, latched = 0, locked = 0, group = 0;

  ~Xkb() { Release(); }
  void Release() {
    if (state) xkb_state_unref(state);
    if (keymap) xkb_keymap_unref(keymap);
    if (ctx) xkb_context_unref(ctx);
    state = nullptr;
    keymap = nullptr;
    ctx = nullptr;
  }

  static void Log(xkb_context* ctx, enum xkb_log_level level, const char* fmt, va_list args) {
    Xkb* self = static_cast<Xkb*>(xkb_context_get_user_data(ctx));
    if (!self || self->log.size() > 8192) return;
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, args);
    self->log += buf;
  }

  // names: undefined or an object with optional string fields; a field left out is NULL, so
  // xkbcommon takes XKB_DEFAULT_* from the environment, then its built-in default.
  void Compile(Napi::Env env, Napi::Value names) {
    ctx = xkb_context_new(XKB_CONTEXT_NO_FLAGS);
    if (!ctx) ThrowInput(env, "keymap", "xkb_context_new failed");
    xkb_context_set_user_data(ctx, this);
    xkb_context_set_log_fn(ctx, &Xkb::Log);
    xkb_context_set_log_level(ctx, XKB_LOG_LEVEL_ERROR);
    std::string fields[5];
    bool set[5] = {};
    static const char* keys[5] = {"rules", "model", "layout", "variant", "options"};
    if (names.IsObject()) {
      Napi::Object o = names.As<Napi::Object>();
      for (int i = 0; i < 5; i++) {
        Napi::Value v = o.Get(keys[i]);
        if (v.IsUndefined() || v.IsNull()) continue;
        if (!v.IsString()) throw Napi::TypeError::New(env, std::string("keymap.") + keys[i] + " must be a string");
        fields[i] = v.As<Napi::String>().Utf8Value();
        set[i] = true;
      }
    } else if (!names.IsUndefined() && !names.IsNull()) {
      throw Napi::TypeError::New(env, "keymap names must be an object");
    }
    xkb_rule_names rmlvo = {
        set[0] ? fields[0].c_str() : nullptr, set[1] ? fields[1].c_str() : nullptr,
        set[2] ? fields[2].c_str() : nullptr, set[3] ? fields[3].c_str() : nullptr,
        set[4] ? fields[4].c_str() : nullptr,
    };
    keymap = xkb_keymap_new_from_names(ctx, &rmlvo, XKB_KEYMAP_COMPILE_NO_FLAGS);
    if (!keymap) {
      std::string what;
      for (int i = 0; i < 5; i++) {
        if (!set[i]) continue;
        what += std::string(what.empty() ? "" : ", ") + keys[i] + "=\"" + fields[i] + "\"";
      }
      std::string msg = "xkb could not compile a keymap from " + (what.empty() ? std::string("the defaults") : what);
      std::string log_copy = log;
      Release();
      ThrowInput(env, "keymap", msg, log_copy);
    }
    state = xkb_state_new(keymap);
    if (!state) {
      Release();
      ThrowInput(env, "keymap", "xkb_state_new failed");
    }
    char* s = xkb_keymap_get_as_string(keymap, XKB_KEYMAP_FORMAT_TEXT_V1);
    if (!s) {
      Release();
      ThrowInput(env, "keymap", "xkb_keymap_get_as_string failed");
    }
    text = s;
    free(s);
  }

  // One key (an evdev code): the keysym and text it has in the state before it, then the state
  // updated (when `update`); `modifiers` set on `out` when the serialized modifiers changed.
  void Key(Napi::Env env, uint32_t code, bool pressed, bool update, Napi::Object out) {
    xkb_keycode_t kc = code + 8;  // evdev -> xkb keycodes
    xkb_keysym_t sym = xkb_state_key_get_one_sym(state, kc);
    char utf8[64] = "";
    xkb_state_key_get_utf8(state, kc, utf8, sizeof utf8);
    out.Set("keysym", Napi::Number::New(env, sym));
    out.Set("utf8", Napi::String::New(env, utf8));
    if (!update) return;
    xkb_state_update_key(state, kc, pressed ? XKB_KEY_DOWN : XKB_KEY_UP);
    uint32_t d = xkb_state_serialize_mods(state, XKB_STATE_MODS_DEPRESSED);
    uint32_t la = xkb_state_serialize_mods(state, XKB_STATE_MODS_LATCHED);
    uint32_t lo = xkb_state_serialize_mods(state, XKB_STATE_MODS_LOCKED);
    uint32_t g = xkb_state_serialize_layout(state, XKB_STATE_LAYOUT_EFFECTIVE);
    if (d == depressed && la == latched && lo == locked && g == group) return;
    depressed = d;
    latched = la;
    locked = lo;
    group = g;
    Napi::Object m = Napi::Object::New(env);
    m.Set("depressed", Napi::Number::New(env, d));
    m.Set("latched", Napi::Number::New(env, la));
    m.Set("locked", Napi::Number::New(env, lo));
    m.Set("group", Napi::Number::New(env, g));
    out.Set("modifiers", m);
  }
};

// KeyState: xkb keymap and state alone (tests, and a compositor's keymap before any device).
class KeyState : public Napi::ObjectWrap<KeyState> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "KeyState",
                       {InstanceAccessor<&KeyState::Keymap>("keymap"), InstanceMethod<&KeyState::KeyJs>("key"),
                        InstanceMethod<&KeyState::Close>("close")});
  }
  KeyState(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KeyState>(info) { xkb_.Compile(info.Env(), info[0]); }

 private:
  void Check(Napi::Env env) {
    if (!xkb_.state) throw Napi::Error::New(env, "KeyState is closed");
  }
  Napi::Value Keymap(const Napi::CallbackInfo& info) {
    Check(info.Env());
    return Napi::String::New(info.Env(), xkb_.text);
  }
  Napi::Value KeyJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env);
    uint32_t code = ArgU32(info, 0, "code");
    Napi::Object out = Napi::Object::New(env);
    xkb_.Key(env, code, info[1].ToBoolean(), true, out);
    return out;
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    xkb_.Release();
    return info.Env().Undefined();
  }
  Xkb xkb_;
};

// ---------------------------------------------------------------------------------------------
// libinput

struct DeviceInfo {
  uint32_t id;
  std::string name;
  std::string sysname;
  bool keyboard, pointer, touch;
};

class InputContext : public Napi::ObjectWrap<InputContext> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "InputContext",
                       {InstanceAccessor<&InputContext::Fd>("fd"), InstanceAccessor<&InputContext::Keymap>("keymap"),
                        InstanceMethod<&InputContext::Dispatch>("dispatch"),
                        InstanceMethod<&InputContext::Suspend>("suspend"),
                        InstanceMethod<&InputContext::Resume>("resume"), InstanceMethod<&InputContext::Close>("close")});
  }

  InputContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<InputContext>(info) {
    Napi::Env env = info.Env();
    env_ = env;
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
    Napi::Object opts = info[0].As<Napi::Object>();
    xkb_.Compile(env, opts.Get("keymap"));

    Napi::Value opener = opts.Get("opener");
    if (opener.IsObject()) {
      Napi::Object o = opener.As<Napi::Object>();
      Napi::Value open = o.Get("open"), close = o.Get("close");
      if (!open.IsFunction() || !close.IsFunction())
        throw Napi::TypeError::New(env, "opener must have open(path, flags) and close(fd) functions");
      opener_ = Napi::Persistent(o);
      open_ = Napi::Persistent(open.As<Napi::Function>());
      close_ = Napi::Persistent(close.As<Napi::Function>());
    } else if (!opener.IsUndefined() && !opener.IsNull()) {
      throw Napi::TypeError::New(env, "opener must be an object");
    }

    static const libinput_interface iface = {&InputContext::OpenRestricted, &InputContext::CloseRestricted};
    Napi::Value devices = opts.Get("devices");
    try {
      if (devices.IsArray()) {
        Napi::Array list = devices.As<Napi::Array>();
        li_ = libinput_path_create_context(&iface, this);
        if (!li_) ThrowInput(env, "udev", "libinput_path_create_context failed");
        for (uint32_t i = 0; i < list.Length(); i++) {
          Napi::Value p = list.Get(i);
          if (!p.IsString()) throw Napi::TypeError::New(env, "devices must be strings");
          std::string path = p.As<Napi::String>().Utf8Value();
          last_open_errno_ = 0;
          last_open_error_.clear();
          Enter enter(this);
          libinput_device* dev = libinput_path_add_device(li_, path.c_str());
          if (!dev) {
            std::string why = last_open_error_.empty() ? "libinput refused it (not an input device it handles?)" : last_open_error_;
            ThrowInput(env, "device", "libinput could not add " + path + ": " + why, "", last_open_errno_, path);
          }
        }
      } else {
        std::string seat = "seat0";
        Napi::Value s = opts.Get("seat");
        if (s.IsString()) seat = s.As<Napi::String>().Utf8Value();
        udev_ = udev_new();
        if (!udev_) ThrowInput(env, "udev", "udev_new failed", "", errno);
        li_ = libinput_udev_create_context(&iface, this, udev_);
        if (!li_) ThrowInput(env, "udev", "libinput_udev_create_context failed");
        Enter enter(this);
        if (libinput_udev_assign_seat(li_, seat.c_str()) != 0)
          ThrowInput(env, "seat", "libinput could not assign seat \"" + seat + "\" (udev enumeration failed)");
      }
    } catch (...) {
      Release(false);
      throw;
    }
  }

  ~InputContext() override { Release(true); }

 private:
  // Marks the JS-thread libinput calls: the only time the opener may be called back.
  struct Enter {
    InputContext* self;
    explicit Enter(InputContext* s) : self(s) { self->depth_++; }
    ~Enter() { self->depth_--; }
  };

  static int OpenRestricted(const char* path, int flags, void* data) {
    InputContext* self = static_cast<InputContext*>(data);
    if (self->open_.IsEmpty() || self->finalizing_) {
      int fd = open(path, flags | O_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        self->last_open_errno_ = err;
        self->last_open_error_ = std::string("open: ") + ErrnoName(err) + " (" + strerror(err) + ")";
        return -err;
      }
      return fd;
    }
    Napi::Env env = self->env_;
    Napi::HandleScope scope(env);
    try {
      Napi::Value r = self->open_.Call(self->opener_.Value(), {Napi::String::New(env, path), Napi::Number::New(env, flags)});
      int fd = r.IsNumber() ? r.As<Napi::Number>().Int32Value() : -1;
      if (fd < 0) {
        self->last_open_errno_ = EBADF;
        self->last_open_error_ = "the opener returned no fd";
        return -EBADF;
      }
      return fd;
    } catch (const Napi::Error& e) {
      int err = EIO;
      Napi::Value v = e.Value().IsObject() ? e.Value().Get("errno") : env.Undefined();
      if (v.IsNumber()) err = std::abs(v.As<Napi::Number>().Int32Value());
      if (err == 0) err = EIO;
      self->last_open_errno_ = err;
      self->last_open_error_ = std::string("the opener threw: ") + e.Message();
      return -err;
    }
  }

  static void CloseRestricted(int fd, void* data) {
    InputContext* self = static_cast<InputContext*>(data);
    if (self->close_.IsEmpty() || self->finalizing_) {
      close(fd);
      return;
    }
    Napi::Env env = self->env_;
    Napi::HandleScope scope(env);
    try {
      self->close_.Call(self->opener_.Value(), {Napi::Number::New(env, fd)});
    } catch (const Napi::Error& e) {
      // The opener owns the fd once it opened it; its failure to close is its own to report.
      fprintf(stderr, "primebuf input: the opener's close(%d) threw: %s\n", fd, e.Message().c_str());
    }
  }

  void Check(Napi::Env env) {
    if (!li_) throw Napi::Error::New(env, "InputContext is closed");
  }

  Napi::Value Fd(const Napi::CallbackInfo& info) {
    Check(info.Env());
    return Napi::Number::New(info.Env(), libinput_get_fd(li_));
  }
  Napi::Value Keymap(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), xkb_.text); }

  Napi::Object Info(Napi::Env env, const DeviceInfo& d) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", Napi::Number::New(env, d.id));
    o.Set("name", Napi::String::New(env, d.name));
    o.Set("sysname", Napi::String::New(env, d.sysname));
    Napi::Array caps = Napi::Array::New(env);
    uint32_t n = 0;
    if (d.keyboard) caps.Set(n++, Napi::String::New(env, "keyboard"));
    if (d.pointer) caps.Set(n++, Napi::String::New(env, "pointer"));
    if (d.touch) caps.Set(n++, Napi::String::New(env, "touch"));
    o.Set("capabilities", caps);
    return o;
  }

  static uint32_t IdOf(libinput_device* dev) {
    return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(libinput_device_get_user_data(dev)));
  }

  Napi::Object Base(Napi::Env env, const char* type, libinput_device* dev, uint64_t usec) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("type", Napi::String::New(env, type));
    o.Set("device", Napi::Number::New(env, IdOf(dev)));
    o.Set("timeUs", Napi::Number::New(env, static_cast<double>(usec)));
    return o;
  }

  static Napi::Object Axis(Napi::Env env, libinput_event_pointer* p, libinput_pointer_axis axis, bool wheel) {
    Napi::Object a = Napi::Object::New(env);
    double v = libinput_event_pointer_get_scroll_value(p, axis);
    a.Set("value", Napi::Number::New(env, v));
    if (wheel) a.Set("value120", Napi::Number::New(env, libinput_event_pointer_get_scroll_value_v120(p, axis)));
    else if (v == 0) a.Set("stop", Napi::Boolean::New(env, true));
    return a;
  }

  // One libinput event -> a JS object, or empty when the event is not one primebuf reports.
  Napi::Value Convert(Napi::Env env, libinput_event* ev) {
    libinput_device* dev = libinput_event_get_device(ev);
    switch (libinput_event_get_type(ev)) {
      case LIBINPUT_EVENT_DEVICE_ADDED: {
        DeviceInfo d{next_id_++, libinput_device_get_name(dev), libinput_device_get_sysname(dev),
                     libinput_device_has_capability(dev, LIBINPUT_DEVICE_CAP_KEYBOARD) != 0,
                     libinput_device_has_capability(dev, LIBINPUT_DEVICE_CAP_POINTER) != 0,
                     libinput_device_has_capability(dev, LIBINPUT_DEVICE_CAP_TOUCH) != 0};
        libinput_device_set_user_data(dev, reinterpret_cast<void*>(static_cast<uintptr_t>(d.id)));
        libinput_device_ref(dev);
        devices_[dev] = d;
        Napi::Object o = Napi::Object::New(env);
        o.Set("type", Napi::String::New(env, "device-added"));
        o.Set("device", Info(env, d));
        return o;
      }
      case LIBINPUT_EVENT_DEVICE_REMOVED: {
        auto it = devices_.find(dev);
        if (it == devices_.end()) return Napi::Value();
        Napi::Object o = Napi::Object::New(env);
        o.Set("type", Napi::String::New(env, "device-removed"));
        o.Set("device", Info(env, it->second));
        devices_.erase(it);
        libinput_device_unref(dev);
        return o;
      }
      case LIBINPUT_EVENT_KEYBOARD_KEY: {
        libinput_event_keyboard* k = libinput_event_get_keyboard_event(ev);
        bool pressed = libinput_event_keyboard_get_key_state(k) == LIBINPUT_KEY_STATE_PRESSED;
        uint32_t count = libinput_event_keyboard_get_seat_key_count(k);
        Napi::Object o = Base(env, "key", dev, libinput_event_keyboard_get_time_usec(k));
        uint32_t key = libinput_event_keyboard_get_key(k);
        o.Set("key", Napi::Number::New(env, key));
        o.Set("pressed", Napi::Boolean::New(env, pressed));
        o.Set("seatKeyCount", Napi::Number::New(env, count));
        // The seat's xkb state changes on the first press and the last release of a key across
        // the seat's keyboards (the same key held on two keyboards is one key down).
        xkb_.Key(env, key, pressed, pressed ? count == 1 : count == 0, o);
        return o;
      }
      case LIBINPUT_EVENT_POINTER_MOTION: {
        libinput_event_pointer* p = libinput_event_get_pointer_event(ev);
        Napi::Object o = Base(env, "pointer-motion", dev, libinput_event_pointer_get_time_usec(p));
        o.Set("dx", Napi::Number::New(env, libinput_event_pointer_get_dx(p)));
        o.Set("dy", Napi::Number::New(env, libinput_event_pointer_get_dy(p)));
        o.Set("dxUnaccelerated", Napi::Number::New(env, libinput_event_pointer_get_dx_unaccelerated(p)));
        o.Set("dyUnaccelerated", Napi::Number::New(env, libinput_event_pointer_get_dy_unaccelerated(p)));
        return o;
      }
      case LIBINPUT_EVENT_POINTER_MOTION_ABSOLUTE: {
        libinput_event_pointer* p = libinput_event_get_pointer_event(ev);
        Napi::Object o = Base(env, "pointer-motion-absolute", dev, libinput_event_pointer_get_time_usec(p));
        o.Set("x", Napi::Number::New(env, libinput_event_pointer_get_absolute_x_transformed(p, 1)));
        o.Set("y", Napi::Number::New(env, libinput_event_pointer_get_absolute_y_transformed(p, 1)));
        return o;
      }
      case LIBINPUT_EVENT_POINTER_BUTTON: {
        libinput_event_pointer* p = libinput_event_get_pointer_event(ev);
        Napi::Object o = Base(env, "pointer-button", dev, libinput_event_pointer_get_time_usec(p));
        o.Set("button", Napi::Number::New(env, libinput_event_pointer_get_button(p)));
        o.Set("pressed", Napi::Boolean::New(env, libinput_event_pointer_get_button_state(p) == LIBINPUT_BUTTON_STATE_PRESSED));
        o.Set("seatButtonCount", Napi::Number::New(env, libinput_event_pointer_get_seat_button_count(p)));
        return o;
      }
      case LIBINPUT_EVENT_POINTER_SCROLL_WHEEL:
      case LIBINPUT_EVENT_POINTER_SCROLL_FINGER:
      case LIBINPUT_EVENT_POINTER_SCROLL_CONTINUOUS: {
        // libinput >= 1.19's scroll events; the legacy LIBINPUT_EVENT_POINTER_AXIS duplicates them.
        libinput_event_type t = libinput_event_get_type(ev);
        libinput_event_pointer* p = libinput_event_get_pointer_event(ev);
        bool wheel = t == LIBINPUT_EVENT_POINTER_SCROLL_WHEEL;
        Napi::Object o = Base(env, "pointer-axis", dev, libinput_event_pointer_get_time_usec(p));
        o.Set("source", Napi::String::New(env, wheel ? "wheel" : t == LIBINPUT_EVENT_POINTER_SCROLL_FINGER ? "finger" : "continuous"));
        if (libinput_event_pointer_has_axis(p, LIBINPUT_POINTER_AXIS_SCROLL_VERTICAL))
          o.Set("vertical", Axis(env, p, LIBINPUT_POINTER_AXIS_SCROLL_VERTICAL, wheel));
        if (libinput_event_pointer_has_axis(p, LIBINPUT_POINTER_AXIS_SCROLL_HORIZONTAL))
          o.Set("horizontal", Axis(env, p, LIBINPUT_POINTER_AXIS_SCROLL_HORIZONTAL, wheel));
        return o;
      }
      case LIBINPUT_EVENT_TOUCH_DOWN:
      case LIBINPUT_EVENT_TOUCH_MOTION: {
        libinput_event_touch* tc = libinput_event_get_touch_event(ev);
        bool down = libinput_event_get_type(ev) == LIBINPUT_EVENT_TOUCH_DOWN;
        Napi::Object o = Base(env, down ? "touch-down" : "touch-motion", dev, libinput_event_touch_get_time_usec(tc));
        o.Set("slot", Napi::Number::New(env, libinput_event_touch_get_seat_slot(tc)));
        o.Set("x", Napi::Number::New(env, libinput_event_touch_get_x_transformed(tc, 1)));
        o.Set("y", Napi::Number::New(env, libinput_event_touch_get_y_transformed(tc, 1)));
        return o;
      }
      case LIBINPUT_EVENT_TOUCH_UP: {
        libinput_event_touch* tc = libinput_event_get_touch_event(ev);
        Napi::Object o = Base(env, "touch-up", dev, libinput_event_touch_get_time_usec(tc));
        o.Set("slot", Napi::Number::New(env, libinput_event_touch_get_seat_slot(tc)));
        return o;
      }
      case LIBINPUT_EVENT_TOUCH_FRAME:
      case LIBINPUT_EVENT_TOUCH_CANCEL: {
        libinput_event_touch* tc = libinput_event_get_touch_event(ev);
        bool frame = libinput_event_get_type(ev) == LIBINPUT_EVENT_TOUCH_FRAME;
        return Base(env, frame ? "touch-frame" : "touch-cancel", dev, libinput_event_touch_get_time_usec(tc));
      }
      default:
        return Napi::Value();
    }
  }

  Napi::Value Dispatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env);
    if (depth_ > 0) throw Napi::Error::New(env, "InputContext.dispatch called from inside the opener");
    Napi::Array out = Napi::Array::New(env);
    uint32_t n = 0;
    Enter enter(this);
    int rc = libinput_dispatch(li_);
    if (rc < 0) ThrowErrno(env, -rc, "libinput_dispatch");
    while (libinput_event* ev = libinput_get_event(li_)) {
      Napi::Value v;
      try {
        v = Convert(env, ev);
      } catch (...) {
        libinput_event_destroy(ev);
        throw;
      }
      libinput_event_destroy(ev);
      if (!v.IsEmpty()) out.Set(n++, v);
    }
    return out;
  }

  Napi::Value Suspend(const Napi::CallbackInfo& info) {
    Check(info.Env());
    if (depth_ > 0) throw Napi::Error::New(info.Env(), "InputContext.suspend called from inside the opener");
    Enter enter(this);
    libinput_suspend(li_);
    return info.Env().Undefined();
  }

  Napi::Value Resume(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env);
    if (depth_ > 0) throw Napi::Error::New(env, "InputContext.resume called from inside the opener");
    Enter enter(this);
    if (libinput_resume(li_) != 0) ThrowInput(env, "resume", "libinput_resume failed");
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (depth_ > 0) throw Napi::Error::New(info.Env(), "InputContext.close called from inside the opener");
    Release(false);
    return info.Env().Undefined();
  }

  // Everything released once: our device references, libinput (which closes every device it
  // opened through close_restricted), udev, xkb. From a finalizer the opener is not called (no
  // JS may run there): the fds go to close(2).
  void Release(bool finalizing) {
    finalizing_ = finalizing;
    for (auto& [dev, d] : devices_) libinput_device_unref(dev);
    devices_.clear();
    if (li_) {
      Enter enter(this);
      libinput_unref(li_);
      li_ = nullptr;
    }
    if (udev_) udev_unref(udev_);
    udev_ = nullptr;
    xkb_.Release();
    if (!finalizing) {
      if (!open_.IsEmpty()) open_.Reset();
      if (!close_.IsEmpty()) close_.Reset();
      if (!opener_.IsEmpty()) opener_.Reset();
    }
  }

  Napi::Env env_ = nullptr;
  libinput* li_ = nullptr;
  udev* udev_ = nullptr;
  Xkb xkb_;
  Napi::ObjectReference opener_;
  Napi::FunctionReference open_, close_;
  std::map<libinput_device*, DeviceInfo> devices_;
  uint32_t next_id_ = 1;
  int depth_ = 0;
  bool finalizing_ = false;
  int last_open_errno_ = 0;
  std::string last_open_error_;
};

}  // namespace

void InitInput(Napi::Env env, Napi::Object exports) {
  exports.Set("InputContext", InputContext::Define(env));
  exports.Set("KeyState", KeyState::Define(env));
}

}  // namespace primebuf
