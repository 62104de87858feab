// wayland_client: libwayland-client on the Node event loop with a generic bridge, for the
// client helper and the tests. Proxies cross the boundary as integer keys (key 1 is the
// wl_display). Requests are marshalled from TypeScript by opcode with decoded arguments; events
// reach TypeScript through one callback. Nothing here blocks: a roundtrip is wl_display.sync
// answered on the event loop (the server may live in the same process).
#include <uv.h>
#include <wayland-client-core.h>
#include <wayland-client-protocol.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "common.h"
#include "wayland_common.h"

namespace primebuf {
namespace {

class WlClient;

struct ProxyRec {
  WlClient* owner;
  uint32_t key;
  wl_proxy* proxy;
  const wl_interface* iface;  // libwayland 1.21 has no wl_proxy_get_interface
};

class WlClient : public Napi::ObjectWrap<WlClient> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit WlClient(const Napi::CallbackInfo& info);
  ~WlClient() override { Teardown(); }

  static int Dispatch(const void* impl, void* target, uint32_t opcode, const wl_message* msg, wl_argument* args);

 private:
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value ConnectFd(const Napi::CallbackInfo& info);
  Napi::Value Marshal(const Napi::CallbackInfo& info);
  Napi::Value ProxyDestroy(const Napi::CallbackInfo& info);
  Napi::Value ProxyInfo(const Napi::CallbackInfo& info);
  Napi::Value Flush(const Napi::CallbackInfo& info);
  Napi::Value Error(const Napi::CallbackInfo& info);
  Napi::Value Disconnect(const Napi::CallbackInfo& info);

  void Start(Napi::Env env);
  ProxyRec* Track(wl_proxy* p, const wl_interface* iface);
  ProxyRec* ByKey(Napi::Env env, const Napi::Value& v, const char* what);
  void Teardown();
  void ReportError();
  void Call(Napi::FunctionReference& fn, const std::initializer_list<napi_value>& args);
  static void OnPoll(uv_poll_t* h, int status, int events);
  static void OnPrepare(uv_prepare_t* h);
  void AfterDispatch();
  void FlushNow();  // flushes; on EAGAIN keeps the data and polls for writable
  bool wantWritable_ = false;

  Napi::Env env_;
  wl_display* display_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  uv_prepare_t* prepare_ = nullptr;
  bool dirty_ = false;
  bool failed_ = false;
  int dispatching_ = 0;
  bool disconnectPending_ = false;
  uint32_t nextKey_ = 2;
  std::unordered_map<uint32_t, ProxyRec*> proxies_;
  std::unordered_map<wl_proxy*, ProxyRec*> byPtr_;
  Napi::FunctionReference onEvent_, onError_;
  std::unique_ptr<Napi::AsyncContext> async_;
};

Napi::Function WlClient::Define(Napi::Env env) {
  return DefineClass(env, "WlClient",
                     {
                         InstanceMethod<&WlClient::Connect>("connect"),
                         InstanceMethod<&WlClient::ConnectFd>("connectFd"),
                         InstanceMethod<&WlClient::Marshal>("marshal"),
                         InstanceMethod<&WlClient::ProxyDestroy>("proxyDestroy"),
                         InstanceMethod<&WlClient::ProxyInfo>("proxyInfo"),
                         InstanceMethod<&WlClient::Flush>("flush"),
                         InstanceMethod<&WlClient::Error>("error"),
                         InstanceMethod<&WlClient::Disconnect>("disconnect"),
                     });
}

// new WlClient({ onEvent(proxyKey, opcode, args), onError() })
WlClient::WlClient(const Napi::CallbackInfo& info) : Napi::ObjectWrap<WlClient>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "WlClient: expected a callbacks object");
  Napi::Object cb = info[0].As<Napi::Object>();
  onEvent_ = CallbackRef(env, cb, "WlClient", "onEvent");
  onError_ = CallbackRef(env, cb, "WlClient", "onError");
  async_ = std::make_unique<Napi::AsyncContext>(env, "primebuf:wayland-client");
}

void WlClient::Call(Napi::FunctionReference& fn, const std::initializer_list<napi_value>& args) { CallJs(env_, fn, args); }

void WlClient::Start(Napi::Env env) {
  uv_loop_t* uvloop = nullptr;
  napi_get_uv_event_loop(env, &uvloop);
  int rc = StartUvPump(uvloop, wl_display_get_fd(display_), this, &WlClient::OnPoll, &WlClient::OnPrepare, poll_, prepare_);
  if (rc != 0) {
    wl_display_disconnect(display_);
    display_ = nullptr;
    ThrowErrno(env, -rc, "uv_poll_init", "wayland client fd");
  }
  auto* rec = new ProxyRec{this, 1, reinterpret_cast<wl_proxy*>(display_), &wl_display_interface};
  proxies_[1] = rec;
  byPtr_[rec->proxy] = rec;
  Ref();
}

// connect(name | null): wl_display_connect (WAYLAND_DISPLAY / WAYLAND_SOCKET when null)
Napi::Value WlClient::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (display_) throw Napi::Error::New(env, "WlClient: already connected");
  std::string name;
  bool named = info[0].IsString();
  if (named) name = info[0].As<Napi::String>().Utf8Value();
  errno = 0;
  display_ = wl_display_connect(named ? name.c_str() : nullptr);
  if (!display_) ThrowErrno(env, errno ? errno : ENOENT, "wl_display_connect", named ? name : "$WAYLAND_DISPLAY");
  Start(env);
  return env.Undefined();
}

// connectFd(fd): takes ownership of a connected socket (libwayland closes it on disconnect)
Napi::Value WlClient::ConnectFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (display_) throw Napi::Error::New(env, "WlClient: already connected");
  int fd = ArgFd(info, 0, "fd");
  errno = 0;
  display_ = wl_display_connect_to_fd(fd);
  if (!display_) ThrowErrno(env, errno ? errno : EINVAL, "wl_display_connect_to_fd");
  Start(env);
  return env.Undefined();
}

ProxyRec* WlClient::Track(wl_proxy* p, const wl_interface* iface) {
  auto* rec = new ProxyRec{this, nextKey_++, p, iface};
  wl_proxy_add_dispatcher(p, &WlClient::Dispatch, rec, rec);
  proxies_[rec->key] = rec;
  byPtr_[p] = rec;
  return rec;
}

ProxyRec* WlClient::ByKey(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!display_) throw Napi::Error::New(env, std::string(what) + ": not connected");
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(what) + ": expected a proxy key");
  auto it = proxies_.find(v.As<Napi::Number>().Uint32Value());
  if (it == proxies_.end()) throw Napi::Error::New(env, std::string(what) + ": no such proxy (destroyed?)");
  return it->second;
}

int WlClient::Dispatch(const void* impl, void* target, uint32_t opcode, const wl_message* msg, wl_argument* args) {
  auto* rec = static_cast<ProxyRec*>(const_cast<void*>(impl));
  WlClient* self = rec->owner;
  Napi::Env env = self->env_;
  Napi::HandleScope scope(env);
  Signature sig = ParseSignature(msg->signature);
  Napi::Array out = ArgsToJs(
      env, sig, args,
      [&](wl_object* o) -> Napi::Value {
        auto it = self->byPtr_.find(reinterpret_cast<wl_proxy*>(o));
        return it == self->byPtr_.end() ? env.Null() : Napi::Number::New(env, it->second->key);
      },
      [&](size_t i) -> Napi::Value {
        // libwayland-client already created the proxy for a new object in an event.
        return args[i].o ? Napi::Number::New(env, self->Track(reinterpret_cast<wl_proxy*>(args[i].o), msg->types[i])->key)
                         : env.Null();
      });
  self->Call(self->onEvent_, {Napi::Number::New(env, rec->key), Napi::Number::New(env, opcode), out});
  return 0;
}

// marshal(key, opcode, args[], newInterface | null, newVersion, destroy) -> key of the new proxy
// or 0. new_id arguments are passed as null: libwayland allocates the id.
Napi::Value WlClient::Marshal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ProxyRec* rec = ByKey(env, info[0], "marshal");
  uint32_t opcode = ArgU32(info, 1, "opcode");
  if (!info[2].IsArray()) throw Napi::TypeError::New(env, "marshal: args must be an array");
  Napi::Array in = info[2].As<Napi::Array>();
  const wl_interface* iface = rec->iface;
  if (opcode >= static_cast<uint32_t>(iface->method_count))
    throw Napi::RangeError::New(env, std::string("marshal: ") + iface->name + " has no request " + std::to_string(opcode));
  const wl_message* msg = &iface->methods[opcode];
  Signature sig = ParseSignature(msg->signature);
  if (in.Length() != sig.args.size())
    throw Napi::TypeError::New(env, std::string("marshal: ") + iface->name + "." + msg->name + " takes " +
                                        std::to_string(sig.args.size()) + " arguments");
  const wl_interface* newIface = nullptr;
  if (info[3].IsString()) {
    std::string n = info[3].As<Napi::String>().Utf8Value();
    newIface = FindInterface(n);
    if (!newIface) throw Napi::Error::New(env, "marshal: unknown interface " + n);
  }
  uint32_t version = info[4].IsNumber() ? info[4].As<Napi::Number>().Uint32Value() : wl_proxy_get_version(rec->proxy);
  bool destroy = info[5].IsBoolean() && info[5].As<Napi::Boolean>().Value();
  // new_id arguments are left NULL: libwayland allocates the id.
  WlArgs args = JsToArgs(env, in, iface, msg, sig, false, [&](const Napi::Value& v, char type, const std::string& where) {
    return type == 'n' ? nullptr : reinterpret_cast<wl_object*>(ByKey(env, v, where.c_str())->proxy);
  });
  if (destroy) {
    proxies_.erase(rec->key);
    byPtr_.erase(rec->proxy);
  }
  wl_proxy* target = rec->proxy;
  if (destroy) delete rec;
  wl_proxy* created = wl_proxy_marshal_array_flags(target, opcode, newIface, version,
                                                   destroy ? WL_MARSHAL_FLAG_DESTROY : 0, args.args.data());
  dirty_ = true;
  if (newIface && created) return Napi::Number::New(env, Track(created, newIface)->key);
  if (newIface && !created) ThrowErrno(env, errno ? errno : ENOMEM, "wl_proxy_marshal_array_flags", msg->name);
  return Napi::Number::New(env, 0);
}

// proxyDestroy(key): wl_proxy_destroy, for objects without a destructor request (wl_callback)
Napi::Value WlClient::ProxyDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!display_) return env.Undefined();
  auto it = proxies_.find(ArgU32(info, 0, "proxy"));
  if (it == proxies_.end() || it->first == 1) return env.Undefined();
  ProxyRec* rec = it->second;
  proxies_.erase(it);
  byPtr_.erase(rec->proxy);
  wl_proxy_destroy(rec->proxy);
  delete rec;
  return env.Undefined();
}

// proxyInfo(key) -> { id, interface, version } | null
Napi::Value WlClient::ProxyInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!display_) return env.Null();
  auto it = proxies_.find(ArgU32(info, 0, "proxy"));
  if (it == proxies_.end()) return env.Null();
  wl_proxy* p = it->second->proxy;
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", Napi::Number::New(env, wl_proxy_get_id(p)));
  out.Set("interface", Napi::String::New(env, wl_proxy_get_class(p)));
  out.Set("version", Napi::Number::New(env, it->first == 1 ? 1 : wl_proxy_get_version(p)));
  return out;
}

void WlClient::FlushNow() {
  dirty_ = false;
  bool blocked = false;
  if (wl_display_flush(display_) < 0) {
    if (errno == EAGAIN) {
      blocked = true;  // the socket is full: resume when it is writable
    } else {
      ReportError();
      return;
    }
  }
  if (blocked != wantWritable_ && poll_ && !failed_) {
    wantWritable_ = blocked;
    uv_poll_start(poll_, blocked ? (UV_READABLE | UV_WRITABLE) : UV_READABLE, &WlClient::OnPoll);
  }
}

Napi::Value WlClient::Flush(const Napi::CallbackInfo& info) {
  if (display_ && !failed_) FlushNow();
  return info.Env().Undefined();
}

// error() -> null | { errno, code?, interface?, id? } (a protocol error has code/interface/id)
Napi::Value WlClient::Error(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!display_) return env.Null();
  int err = wl_display_get_error(display_);
  if (err == 0) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("errno", Napi::Number::New(env, err));
  if (err == EPROTO) {
    const wl_interface* iface = nullptr;
    uint32_t id = 0;
    uint32_t code = wl_display_get_protocol_error(display_, &iface, &id);
    out.Set("code", Napi::Number::New(env, code));
    out.Set("interface", iface ? Napi::String::New(env, iface->name) : env.Null());
    out.Set("id", Napi::Number::New(env, id));
  }
  return out;
}

void WlClient::ReportError() {
  if (failed_) return;
  failed_ = true;
  if (poll_) uv_poll_stop(poll_);
  Call(onError_, {});
}

void WlClient::OnPoll(uv_poll_t* h, int status, int events) {
  auto* self = static_cast<WlClient*>(h->data);
  if (!self->display_ || self->failed_) return;
  Napi::HandleScope hs(self->env_);
  Napi::CallbackScope scope(self->env_, *self->async_);
  if (events & UV_WRITABLE) self->FlushNow();
  if (!(events & UV_READABLE) || self->failed_) return;
  self->dispatching_++;
  int rc = 0;
  while (wl_display_prepare_read(self->display_) != 0) {
    rc = wl_display_dispatch_pending(self->display_);
    if (rc < 0) break;
  }
  if (rc >= 0) {
    if (wl_display_read_events(self->display_) < 0 && errno != EAGAIN) rc = -1;
    if (rc >= 0) rc = wl_display_dispatch_pending(self->display_);
  }
  self->dispatching_--;
  if (rc < 0 || wl_display_get_error(self->display_) != 0) self->ReportError();
  self->AfterDispatch();
}

void WlClient::OnPrepare(uv_prepare_t* h) {
  auto* self = static_cast<WlClient*>(h->data);
  if (!self->display_) return;
  if (self->dirty_ && !self->failed_) {
    Napi::HandleScope hs(self->env_);
    Napi::CallbackScope scope(self->env_, *self->async_);
    self->FlushNow();
  }
}

void WlClient::AfterDispatch() {
  if (disconnectPending_ && dispatching_ == 0) {
    disconnectPending_ = false;
    Teardown();
    Unref();
  }
}

void WlClient::Teardown() {
  if (!display_) return;
  uv_poll_stop(poll_);
  uv_prepare_stop(prepare_);
  for (auto& [k, rec] : proxies_) {
    if (k != 1) wl_proxy_destroy(rec->proxy);
    delete rec;
  }
  proxies_.clear();
  byPtr_.clear();
  wl_display_disconnect(display_);
  display_ = nullptr;
  CloseUvPump(poll_, prepare_);
}

Napi::Value WlClient::Disconnect(const Napi::CallbackInfo& info) {
  if (display_ && dispatching_ > 0) {
    disconnectPending_ = true;
  } else if (display_) {
    Teardown();
    Unref();
  }
  return info.Env().Undefined();
}

}  // namespace

void InitWaylandClient(Napi::Env env, Napi::Object exports) { exports.Set("WlClient", WlClient::Define(env)); }

}  // namespace primebuf
