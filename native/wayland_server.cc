// wayland_server: a libwayland-server display on the Node event loop and a generic bridge that
// lets TypeScript implement any interface compiled from protocol/ (plus the core protocol).
//
// Mechanism only. Objects cross the boundary as small integer keys (per display): clients,
// globals and resources. Requests reach TypeScript through one callback with decoded
// arguments; events, errors and destruction are posted back by key. libwayland does the wire
// format, fd passing, object lifetime and version checks.
#include <uv.h>
#include <wayland-server-core.h>
#include <wayland-server-protocol.h>
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include <xf86drm.h>
#include <xf86drmMode.h>


#include "common.h"
#include "copy.h"
#include "wayland_common.h"

namespace primebuf {
namespace {

class WlServer;

struct ClientRec {
  WlServer* server;
  uint32_t key;
  wl_client* client;
  wl_listener destroy;
};

struct ResourceRec {
  WlServer* server;
  uint32_t key;
  wl_resource* resource;
  bool ours;             // created by this bridge (generic dispatcher), or foreign (libwayland's own)
  const wl_interface* iface;  // by creation, or by class name for foreign resources
  wl_listener destroy;   // foreign resources only
};

struct GlobalRec {
  WlServer* server;
  uint32_t key;
  wl_global* global;
  const wl_interface* iface;
};

// The direct lane (see laneArm below): one surface's steady state of direct frames, run here.
struct LaneBuffer {
  uint32_t fb;   // its framebuffer on the plane (the presenter's, alive while the lane is armed)
  int fd;        // a dma-buf fd whose write fence is waited for (IN_FENCE_FD), -1: none (udmabuf)
  bool owed;     // a commit made it current and no wl_buffer.release was sent since
};

// The copy mode's ring buffers (the presenter's copy ring) and sources (wl_shm buffers of pools
// sealed against shrinking: their memory cannot vanish under a read).
struct LaneSlot {
  uint32_t fb;
  uint8_t* dst;
  uint32_t stride;
  int dmabufFd;           // the write bracket (DMA_BUF_IOCTL_SYNC)
  int32_t stale[4];       // x0, y0, x1, y1 (destination): what changed since it was written; empty when x0 >= x1
};

struct LaneSource {
  const uint8_t* src;     // the buffer's first pixel in the pool's mapping
  uint32_t stride, width, height;
};

struct Lane {
  bool armed = false;
  bool copy = false;         // copy mode: sources copied into the ring (else direct: buffers flipped)
  bool quiescing = false;    // handing back: a queued commit is not submitted
  wl_resource* surface = nullptr;
  wl_client* client = nullptr;
  int drmFd = -1;
  std::vector<uint32_t> objs, props;
  std::vector<uint64_t> values;
  size_t fbSlot = 0;
  uint32_t planeId = 0, inFenceProp = 0;
  // the same state grouped by object as DRM_IOCTL_MODE_ATOMIC takes it, made once per arming:
  // a frame without a fence changes one value and makes one ioctl
  std::vector<uint32_t> aObjs, aCounts, aProps;
  std::vector<uint64_t> aValues;
  size_t aFb = 0;
  std::unordered_map<wl_resource*, LaneBuffer> buffers;
  // the pending state (since the last commit)
  bool attached = false;
  wl_resource* pendingBuffer = nullptr;
  std::vector<wl_resource*> pendingCallbacks;
  // the applied state
  wl_resource* current = nullptr;   // the surface's current buffer
  wl_resource* shown = nullptr;     // on the plane (its flip completed)
  wl_resource* inflight = nullptr;  // committed to KMS, flip pending
  std::vector<wl_resource*> inflightCallbacks;
  bool queued = false;              // `current` waits for the flip in flight
  std::vector<wl_resource*> queuedCallbacks;
  // since arming
  uint32_t frames = 0;
  uint32_t tvSec = 0, tvUsec = 0, sequence = 0;
  int error = 0;
  // over the server's life
  double totalFrames = 0, totalCommits = 0, handbacks = 0, strayEvents = 0, fences = 0;
  // tests only (the kiosk's PRIMEBUF_KIOSK_SLOWER): every lane frame first spins `slower` times
  // the process's CPU per lane frame over the last 32 (without the spins)
  double slower = 0;
  int64_t costs[32] = {};
  uint32_t costN = 0;
  int64_t lastCpu = -1;
  double spunNs = 0, spunFrames = 0, spunBaseNs = 0;
  uv_poll_t* poll = nullptr;
  Napi::FunctionReference onHandback;
  // copy mode
  std::vector<LaneSlot> slots;
  int slotShown = -1, slotInflight = -1;
  int32_t dx = 0, dy = 0, modeW = 0, modeH = 0;
  std::unordered_map<wl_resource*, LaneSource> sources;
  int32_t damage[4] = {0, 0, 0, 0};         // the pending damage (buffer coordinates), a bounding box
  int32_t queuedDamage[4] = {0, 0, 0, 0};   // of commits waiting for the flip in flight
  double bytes = 0, totalBytes = 0;

  // A flip of the lane's is in flight (its buffer, or its ring buffer in copy mode).
  bool Flipping() const { return inflight != nullptr || slotInflight >= 0; }

  // Lets go of what one arming held (its callbacks are libwayland's resources or, handed back,
  // TypeScript's): done before an arming and after a handback or the display's end.
  void Drop() {
    armed = false;
    copy = false;
    surface = nullptr;
    client = nullptr;
    buffers.clear();
    sources.clear();
    slots.clear();
    current = shown = inflight = pendingBuffer = nullptr;
    slotShown = slotInflight = -1;
    attached = queued = false;
    pendingCallbacks.clear();
    inflightCallbacks.clear();
    queuedCallbacks.clear();
    for (int i = 0; i < 4; i++) damage[i] = queuedDamage[i] = 0;
    onHandback.Reset();
  }
};

static void BoxUnion(int32_t* a, const int32_t* b) {
  if (b[0] >= b[2] || b[1] >= b[3]) return;
  if (a[0] >= a[2] || a[1] >= a[3]) {
    for (int i = 0; i < 4; i++) a[i] = b[i];
    return;
  }
  a[0] = std::min(a[0], b[0]);
  a[1] = std::min(a[1], b[1]);
  a[2] = std::max(a[2], b[2]);
  a[3] = std::max(a[3], b[3]);
}

class WlServer : public Napi::ObjectWrap<WlServer> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit WlServer(const Napi::CallbackInfo& info);
  ~WlServer() override { Teardown(); }

  // Called from libwayland.
  static void OnClientCreated(wl_listener* l, void* data);
  static void OnClientDestroyed(wl_listener* l, void* data);
  static void OnForeignDestroyed(wl_listener* l, void* data);
  static void OnOurDestroyed(wl_resource* r);
  static int Dispatch(const void* impl, void* target, uint32_t opcode, const wl_message* msg, wl_argument* args);
  static void Bind(wl_client* client, void* data, uint32_t version, uint32_t id);

 private:
  Napi::Value AddSocket(const Napi::CallbackInfo& info);
  Napi::Value AddSocketAuto(const Napi::CallbackInfo& info);
  Napi::Value CreateClient(const Napi::CallbackInfo& info);
  Napi::Value GlobalCreate(const Napi::CallbackInfo& info);
  Napi::Value GlobalDestroy(const Napi::CallbackInfo& info);
  Napi::Value ResourceCreate(const Napi::CallbackInfo& info);
  Napi::Value ResourceDestroy(const Napi::CallbackInfo& info);
  Napi::Value ResourceInfo(const Napi::CallbackInfo& info);
  Napi::Value PostEvent(const Napi::CallbackInfo& info);
  Napi::Value PostError(const Napi::CallbackInfo& info);
  Napi::Value ClientDestroy(const Napi::CallbackInfo& info);
  Napi::Value ClientImplementationError(const Napi::CallbackInfo& info);
  Napi::Value NextSerial(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  Napi::Value LaneArm(const Napi::CallbackInfo& info);
  Napi::Value LaneDisarm(const Napi::CallbackInfo& info);
  Napi::Value LaneStats(const Napi::CallbackInfo& info);

  // the lane
  bool LaneRequest(wl_resource* r, uint32_t opcode, wl_argument* args);
  void LaneSubmit(std::vector<wl_resource*>& callbacks);
  bool LaneCopy(const int32_t* damage, uint32_t& fb);
  void LaneFlipped(uint32_t sec, uint32_t usec, uint32_t seq);
  bool LaneReadEvents();
  void LaneMaybeRelease(wl_resource* b);
  void LaneHandback(const char* reason);
  void LaneForget(wl_resource* r);
  static void OnLanePoll(uv_poll_t* h, int status, int events);
  static void OnLaneCallbackDestroyed(wl_resource* r);

  void AssertOpen(Napi::Env env) const {
    if (!display_) throw Napi::Error::New(env, "wayland display is destroyed");
  }
  void Call(Napi::FunctionReference& fn, const std::initializer_list<napi_value>& args);
  ClientRec* ClientFor(wl_client* c);
  ResourceRec* RecFor(wl_resource* r);  // tracks foreign resources on first sight
  ResourceRec* Track(wl_resource* r, const wl_interface* iface);  // created here: generic dispatcher
  ResourceRec* ResourceByKey(Napi::Env env, const Napi::Value& v, const char* what);
  void MarkDirty() { dirty_ = true; }
  void FlushNow();
  void AfterDispatch();
  void Teardown();
  static void OnPoll(uv_poll_t* h, int status, int events);
  static void OnPrepare(uv_prepare_t* h);

  Napi::Env env_;
  wl_display* display_ = nullptr;
  wl_event_loop* loop_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  uv_prepare_t* prepare_ = nullptr;
  bool dirty_ = false;
  int dispatching_ = 0;        // inside wl_event_loop_dispatch: destroy() is deferred
  bool destroyPending_ = false;
  uint32_t nextKey_ = 1;
  wl_listener clientCreated_{};
  std::unordered_map<uint32_t, ClientRec*> clients_;
  std::unordered_map<wl_client*, ClientRec*> clientsByPtr_;
  std::unordered_map<uint32_t, ResourceRec*> resources_;
  std::unordered_map<wl_resource*, ResourceRec*> resourcesByPtr_;
  std::unordered_map<uint32_t, GlobalRec*> globals_;
  Napi::FunctionReference onClient_, onClientDestroyed_, onBind_, onRequest_, onDestroy_;
  std::unique_ptr<Napi::AsyncContext> async_;
  Lane lane_;
  // A pump's callback (OnPoll, OnPrepare, OnLanePoll) enters JavaScript only when something is
  // for TypeScript: the handle and callback scopes are opened by the first JS call (before any
  // local handle scope) and closed at the callback's end. The lane's frames never open them.
  bool pumping_ = false;
  std::optional<Napi::HandleScope> pumpHs_;
  std::optional<Napi::CallbackScope> pumpCs_;
  void EnsureJsScope() {
    if (pumping_ && !pumpCs_) {
      pumpHs_.emplace(env_);
      pumpCs_.emplace(env_, *async_);
    }
  }
  void EndPump() {
    pumpCs_.reset();  // runs the microtasks and ticks queued meanwhile
    pumpHs_.reset();
    pumping_ = false;
  }
};

Napi::Function WlServer::Define(Napi::Env env) {
  return DefineClass(env, "WlServer",
                     {
                         InstanceMethod<&WlServer::AddSocket>("addSocket"),
                         InstanceMethod<&WlServer::AddSocketAuto>("addSocketAuto"),
                         InstanceMethod<&WlServer::CreateClient>("createClient"),
                         InstanceMethod<&WlServer::GlobalCreate>("globalCreate"),
                         InstanceMethod<&WlServer::GlobalDestroy>("globalDestroy"),
                         InstanceMethod<&WlServer::ResourceCreate>("resourceCreate"),
                         InstanceMethod<&WlServer::ResourceDestroy>("resourceDestroy"),
                         InstanceMethod<&WlServer::ResourceInfo>("resourceInfo"),
                         InstanceMethod<&WlServer::PostEvent>("postEvent"),
                         InstanceMethod<&WlServer::PostError>("postError"),
                         InstanceMethod<&WlServer::ClientDestroy>("clientDestroy"),
                         InstanceMethod<&WlServer::ClientImplementationError>("clientImplementationError"),
                         InstanceMethod<&WlServer::NextSerial>("nextSerial"),
                         InstanceMethod<&WlServer::Destroy>("destroy"),
                         InstanceMethod<&WlServer::LaneArm>("laneArm"),
                         InstanceMethod<&WlServer::LaneDisarm>("laneDisarm"),
                         InstanceMethod<&WlServer::LaneStats>("laneStats"),
                     });
}

// new WlServer({ onClient(key, pid, uid, gid), onClientDestroyed(key), onBind(globalKey,
//   clientKey, resourceKey, version), onRequest(resourceKey, opcode, args), onDestroy(resourceKey) })
WlServer::WlServer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<WlServer>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "WlServer: expected a callbacks object");
  Napi::Object cb = info[0].As<Napi::Object>();
  auto fn = [&](const char* name) { return CallbackRef(env, cb, "WlServer", name); };
  onClient_ = fn("onClient");
  onClientDestroyed_ = fn("onClientDestroyed");
  onBind_ = fn("onBind");
  onRequest_ = fn("onRequest");
  onDestroy_ = fn("onDestroy");
  async_ = std::make_unique<Napi::AsyncContext>(env, "primebuf:wayland-server");

  display_ = wl_display_create();
  if (!display_) ThrowErrno(env, errno ? errno : ENOMEM, "wl_display_create");
  loop_ = wl_display_get_event_loop(display_);
  clientCreated_.notify = &WlServer::OnClientCreated;
  wl_display_add_client_created_listener(display_, &clientCreated_);

  uv_loop_t* uvloop = nullptr;
  if (napi_get_uv_event_loop(env, &uvloop) != napi_ok) throw Napi::Error::New(env, "no libuv loop");
  int rc = StartUvPump(uvloop, wl_event_loop_get_fd(loop_), this, &WlServer::OnPoll, &WlServer::OnPrepare, poll_, prepare_);
  if (rc != 0) {
    wl_display_destroy(display_);
    display_ = nullptr;
    ThrowErrno(env, -rc, "uv_poll_init", "wayland event loop fd");
  }
  Ref();  // a running display keeps its JS object alive until destroy()
}

void WlServer::Call(Napi::FunctionReference& fn, const std::initializer_list<napi_value>& args) { CallJs(env_, fn, args); }

void WlServer::OnPoll(uv_poll_t* h, int status, int events) {
  auto* self = static_cast<WlServer*>(h->data);
  if (!self->display_) return;
  self->pumping_ = true;
  self->dispatching_++;
  wl_event_loop_dispatch(self->loop_, 0);
  self->dispatching_--;
  self->AfterDispatch();
  self->EndPump();
}

void WlServer::AfterDispatch() {
  if (!display_) return;
  if (destroyPending_ && dispatching_ == 0) {
    destroyPending_ = false;
    Teardown();
    Unref();
    return;
  }
  FlushNow();
}

void WlServer::OnPrepare(uv_prepare_t* h) {
  auto* self = static_cast<WlServer*>(h->data);
  if (!self->display_) return;
  self->pumping_ = true;
  self->dispatching_++;
  wl_event_loop_dispatch_idle(self->loop_);
  self->dispatching_--;
  if (self->dirty_ || self->destroyPending_) self->AfterDispatch();
  self->EndPump();
}

void WlServer::FlushNow() {
  dirty_ = false;
  wl_display_flush_clients(display_);
}

void WlServer::Teardown() {
  if (!display_) return;
  lane_.Drop();  // no report (this may run from the destructor): the display's end takes everything with it
  if (lane_.poll) {
    uv_poll_stop(lane_.poll);
    uv_close(reinterpret_cast<uv_handle_t*>(lane_.poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    lane_.poll = nullptr;
  }
  uv_poll_stop(poll_);
  uv_prepare_stop(prepare_);
  // Destroying the display destroys every client and resource; their notifications still
  // reach TypeScript so owners can release what they hold.
  wl_display_destroy_clients(display_);
  for (auto& [k, g] : globals_) {
    wl_global_destroy(g->global);
    delete g;
  }
  globals_.clear();
  wl_list_remove(&clientCreated_.link);
  wl_display_destroy(display_);
  display_ = nullptr;
  loop_ = nullptr;
  for (auto& [k, r] : resources_) delete r;  // none expected: every resource died with its client
  resources_.clear();
  resourcesByPtr_.clear();
  for (auto& [k, c] : clients_) delete c;
  clients_.clear();
  clientsByPtr_.clear();
  CloseUvPump(poll_, prepare_);
}

void WlServer::OnClientCreated(wl_listener* l, void* data) {
  WlServer* self = wl_container_of(l, self, clientCreated_);
  auto* client = static_cast<wl_client*>(data);
  auto* rec = new ClientRec{self, self->nextKey_++, client, {}};
  rec->destroy.notify = &WlServer::OnClientDestroyed;
  wl_client_add_destroy_listener(client, &rec->destroy);
  self->clients_[rec->key] = rec;
  self->clientsByPtr_[client] = rec;
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  wl_client_get_credentials(client, &pid, &uid, &gid);
  self->EnsureJsScope();
  Napi::Env env = self->env_;
  Napi::HandleScope scope(env);
  self->Call(self->onClient_, {Napi::Number::New(env, rec->key), Napi::Number::New(env, pid),
                               Napi::Number::New(env, uid), Napi::Number::New(env, gid)});
}

void WlServer::OnClientDestroyed(wl_listener* l, void* data) {
  ClientRec* rec = wl_container_of(l, rec, destroy);
  WlServer* self = rec->server;
  self->EnsureJsScope();
  if (self->lane_.armed && self->lane_.client == rec->client) self->LaneHandback("the client disconnected");
  wl_list_remove(&rec->destroy.link);
  self->clients_.erase(rec->key);
  self->clientsByPtr_.erase(rec->client);
  uint32_t key = rec->key;
  delete rec;
  Napi::HandleScope scope(self->env_);
  self->Call(self->onClientDestroyed_, {Napi::Number::New(self->env_, key)});
}

ClientRec* WlServer::ClientFor(wl_client* c) {
  auto it = clientsByPtr_.find(c);
  return it == clientsByPtr_.end() ? nullptr : it->second;
}

ResourceRec* WlServer::Track(wl_resource* r, const wl_interface* iface) {
  auto* rec = new ResourceRec{this, nextKey_++, r, true, iface, {}};
  wl_resource_set_dispatcher(r, &WlServer::Dispatch, rec, rec, &WlServer::OnOurDestroyed);
  resources_[rec->key] = rec;
  resourcesByPtr_[r] = rec;
  return rec;
}

ResourceRec* WlServer::RecFor(wl_resource* r) {
  auto it = resourcesByPtr_.find(r);
  if (it != resourcesByPtr_.end()) return it->second;
  // Foreign (made by libwayland itself, not through this bridge): events may still be posted through the
  // bridge, by the interface of its class.
  auto* rec = new ResourceRec{this, nextKey_++, r, false, FindInterface(wl_resource_get_class(r)), {}};
  rec->destroy.notify = &WlServer::OnForeignDestroyed;
  wl_resource_add_destroy_listener(r, &rec->destroy);
  resources_[rec->key] = rec;
  resourcesByPtr_[r] = rec;
  return rec;
}

void WlServer::OnOurDestroyed(wl_resource* r) {
  auto* rec = static_cast<ResourceRec*>(wl_resource_get_user_data(r));
  WlServer* self = rec->server;
  self->EnsureJsScope();
  if (self->lane_.armed) self->LaneForget(r);
  uint32_t key = rec->key;
  self->resources_.erase(key);
  self->resourcesByPtr_.erase(r);
  delete rec;
  Napi::HandleScope scope(self->env_);
  self->Call(self->onDestroy_, {Napi::Number::New(self->env_, key)});
}

void WlServer::OnForeignDestroyed(wl_listener* l, void* data) {
  ResourceRec* rec = wl_container_of(l, rec, destroy);
  WlServer* self = rec->server;
  self->EnsureJsScope();
  wl_list_remove(&rec->destroy.link);
  uint32_t key = rec->key;
  self->resources_.erase(key);
  self->resourcesByPtr_.erase(rec->resource);
  delete rec;
  Napi::HandleScope scope(self->env_);
  self->Call(self->onDestroy_, {Napi::Number::New(self->env_, key)});
}

int WlServer::Dispatch(const void* impl, void* target, uint32_t opcode, const wl_message* msg, wl_argument* args) {
  auto* rec = static_cast<ResourceRec*>(const_cast<void*>(impl));
  WlServer* self = rec->server;
  Napi::Env env = self->env_;
  wl_resource* resource = rec->resource;
  wl_client* client = wl_resource_get_client(resource);
  // the direct lane: its surface's steady-state requests are answered here; any other request of
  // its client hands the lane back first (TypeScript then sees the state the lane left)
  if (self->lane_.armed && client == self->lane_.client) {
    if (resource == self->lane_.surface && self->LaneRequest(resource, opcode, args)) {
      self->MarkDirty();
      return 0;
    }
    if (self->lane_.armed) self->LaneHandback(msg->name);
  }
  self->EnsureJsScope();
  Napi::HandleScope scope(env);
  Signature sig = ParseSignature(msg->signature);
  Napi::Array out = ArgsToJs(
      env, sig, args,
      [&](wl_object* o) -> Napi::Value {
        return Napi::Number::New(env, self->RecFor(reinterpret_cast<wl_resource*>(o))->key);
      },
      [&](size_t i) -> Napi::Value {
        const wl_interface* iface = msg->types[i];
        if (!iface) {
          // Only wl_registry.bind has an untyped new_id; libwayland implements the registry.
          wl_resource_post_error(resource, WL_DISPLAY_ERROR_INVALID_METHOD, "untyped new_id is not supported");
          return Napi::Value();
        }
        wl_resource* created = wl_resource_create(client, iface, wl_resource_get_version(resource), args[i].n);
        if (!created) {
          wl_client_post_no_memory(client);
          // The fds of this request are still ours: close them so none leaks.
          for (size_t j = 0; j < sig.args.size(); j++)
            if (sig.args[j].type == 'h') close(args[j].h);
          return Napi::Value();
        }
        // [key, protocol id]: the id saves the TypeScript side a resourceInfo call per new object
        Napi::Array pair = Napi::Array::New(env, 2);
        pair.Set(0u, Napi::Number::New(env, self->Track(created, iface)->key));
        pair.Set(1u, Napi::Number::New(env, args[i].n));
        return pair;
      });
  if (out.IsEmpty()) return 0;  // the request was refused above
  self->Call(self->onRequest_, {Napi::Number::New(env, rec->key), Napi::Number::New(env, opcode), out});
  self->MarkDirty();
  return 0;
}

void WlServer::Bind(wl_client* client, void* data, uint32_t version, uint32_t id) {
  auto* g = static_cast<GlobalRec*>(data);
  WlServer* self = g->server;
  self->EnsureJsScope();
  wl_resource* r = wl_resource_create(client, g->iface, version, id);
  if (!r) {
    wl_client_post_no_memory(client);
    return;
  }
  ResourceRec* rec = self->Track(r, g->iface);
  ClientRec* c = self->ClientFor(client);
  Napi::Env env = self->env_;
  Napi::HandleScope scope(env);
  self->Call(self->onBind_, {Napi::Number::New(env, g->key), Napi::Number::New(env, c ? c->key : 0),
                             Napi::Number::New(env, rec->key), Napi::Number::New(env, version)});
  self->MarkDirty();
}

ResourceRec* WlServer::ResourceByKey(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(what) + ": expected a resource key");
  auto it = resources_.find(v.As<Napi::Number>().Uint32Value());
  if (it == resources_.end()) throw Napi::Error::New(env, std::string(what) + ": no such resource (destroyed?)");
  return it->second;
}

Napi::Value WlServer::AddSocket(const Napi::CallbackInfo& info) {
  AssertOpen(info.Env());
  std::string name = ArgString(info, 0, "name");
  if (wl_display_add_socket(display_, name.c_str()) != 0)
    ThrowErrno(info.Env(), errno ? errno : EINVAL, "wl_display_add_socket", name);
  return Napi::String::New(info.Env(), name);
}

Napi::Value WlServer::AddSocketAuto(const Napi::CallbackInfo& info) {
  AssertOpen(info.Env());
  const char* name = wl_display_add_socket_auto(display_);
  if (!name) ThrowErrno(info.Env(), errno ? errno : EINVAL, "wl_display_add_socket_auto");
  return Napi::String::New(info.Env(), name);
}

// createClient() -> { client: key, fd: the other end of a socketpair, owned by the caller }
Napi::Value WlServer::CreateClient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AssertOpen(env);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) ThrowErrno(env, errno, "socketpair");
  wl_client* c = wl_client_create(display_, sv[0]);
  if (!c) {
    int err = errno ? errno : ENOMEM;
    close(sv[0]);
    close(sv[1]);
    ThrowErrno(env, err, "wl_client_create");
  }
  ClientRec* rec = ClientFor(c);
  Napi::Object out = Napi::Object::New(env);
  out.Set("client", Napi::Number::New(env, rec ? rec->key : 0));
  out.Set("fd", Napi::Number::New(env, sv[1]));
  return out;
}

// globalCreate(interfaceName, version) -> key
Napi::Value WlServer::GlobalCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AssertOpen(env);
  std::string name = ArgString(info, 0, "interface");
  uint32_t version = ArgU32(info, 1, "version");
  const wl_interface* iface = FindInterface(name);
  if (!iface) throw Napi::Error::New(env, "globalCreate: unknown interface " + name + " (not in protocol/)");
  if (version < 1 || static_cast<int>(version) > iface->version)
    throw Napi::RangeError::New(env, "globalCreate: " + name + " version " + std::to_string(version) + " not in 1.." +
                                         std::to_string(iface->version));
  auto* g = new GlobalRec{this, nextKey_++, nullptr, iface};
  g->global = wl_global_create(display_, iface, static_cast<int>(version), g, &WlServer::Bind);
  if (!g->global) {
    delete g;
    ThrowErrno(env, errno ? errno : ENOMEM, "wl_global_create", name);
  }
  globals_[g->key] = g;
  return Napi::Number::New(env, g->key);
}

Napi::Value WlServer::GlobalDestroy(const Napi::CallbackInfo& info) {
  AssertOpen(info.Env());
  auto it = globals_.find(ArgU32(info, 0, "global"));
  if (it != globals_.end()) {
    wl_global_destroy(it->second->global);
    delete it->second;
    globals_.erase(it);
  }
  MarkDirty();
  return info.Env().Undefined();
}

// resourceCreate(clientKey, interfaceName, version, id) -> key (id 0: server-allocated, for
// new_id arguments of events)
Napi::Value WlServer::ResourceCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AssertOpen(env);
  auto it = clients_.find(ArgU32(info, 0, "client"));
  if (it == clients_.end()) throw Napi::Error::New(env, "resourceCreate: no such client (disconnected?)");
  std::string name = ArgString(info, 1, "interface");
  const wl_interface* iface = FindInterface(name);
  if (!iface) throw Napi::Error::New(env, "resourceCreate: unknown interface " + name);
  uint32_t version = ArgU32(info, 2, "version");
  uint32_t id = ArgU32(info, 3, "id");
  wl_resource* r = wl_resource_create(it->second->client, iface, static_cast<int>(version), id);
  if (!r) ThrowErrno(env, ENOMEM, "wl_resource_create", name);
  return Napi::Number::New(env, Track(r, iface)->key);
}

Napi::Value WlServer::ResourceDestroy(const Napi::CallbackInfo& info) {
  AssertOpen(info.Env());
  auto it = resources_.find(ArgU32(info, 0, "resource"));
  if (it != resources_.end()) wl_resource_destroy(it->second->resource);
  MarkDirty();
  return info.Env().Undefined();
}

// resourceInfo(key) -> { id, interface, version, client, ours } | null
Napi::Value WlServer::ResourceInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AssertOpen(env);
  auto it = resources_.find(ArgU32(info, 0, "resource"));
  if (it == resources_.end()) return env.Null();
  wl_resource* r = it->second->resource;
  ClientRec* c = ClientFor(wl_resource_get_client(r));
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", Napi::Number::New(env, wl_resource_get_id(r)));
  out.Set("interface", Napi::String::New(env, wl_resource_get_class(r)));
  out.Set("version", Napi::Number::New(env, wl_resource_get_version(r)));
  out.Set("client", Napi::Number::New(env, c ? c->key : 0));
  out.Set("ours", Napi::Boolean::New(env, it->second->ours));
  return out;
}

// postEvent(key, opcode, args[]): ints/uints/fixed as numbers, strings, objects and new_ids as
// resource keys (or null), arrays as Uint8Array, fds as numbers (libwayland sends a duplicate;
// the caller keeps its fd).
Napi::Value WlServer::PostEvent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AssertOpen(env);
  ResourceRec* rec = ResourceByKey(env, info[0], "postEvent");
  uint32_t opcode = ArgU32(info, 1, "opcode");
  if (!info[2].IsArray()) throw Napi::TypeError::New(env, "postEvent: args must be an array");
  Napi::Array in = info[2].As<Napi::Array>();
  wl_resource* r = rec->resource;
  const wl_interface* iface = rec->iface;
  if (!iface) throw Napi::Error::New(env, "postEvent: resource of an interface the bridge does not know");
  if (opcode >= static_cast<uint32_t>(iface->event_count))
    throw Napi::RangeError::New(env, std::string("postEvent: ") + iface->name + " has no event " + std::to_string(opcode));
  const wl_message* msg = &iface->events[opcode];
  Signature sig = ParseSignature(msg->signature);
  if (wl_resource_get_version(r) < sig.since)
    throw Napi::Error::New(env, std::string("postEvent: ") + iface->name + "." + msg->name + " needs version " +
                                    std::to_string(sig.since) + ", resource has " +
                                    std::to_string(wl_resource_get_version(r)));
  if (in.Length() != sig.args.size())
    throw Napi::TypeError::New(env, std::string("postEvent: ") + iface->name + "." + msg->name + " takes " +
                                        std::to_string(sig.args.size()) + " arguments");
  WlArgs args = JsToArgs(env, in, iface, msg, sig, true, [&](const Napi::Value& v, char, const std::string& where) {
    return reinterpret_cast<wl_object*>(ResourceByKey(env, v, where.c_str())->resource);
  });
  wl_resource_post_event_array(r, opcode, args.args.data());
  MarkDirty();
  return env.Undefined();
}

Napi::Value WlServer::PostError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AssertOpen(env);
  ResourceRec* rec = ResourceByKey(env, info[0], "postError");
  uint32_t code = ArgU32(info, 1, "code");
  std::string message = ArgString(info, 2, "message");
  wl_resource_post_error(rec->resource, code, "%s", message.c_str());
  MarkDirty();
  return env.Undefined();
}

Napi::Value WlServer::ClientDestroy(const Napi::CallbackInfo& info) {
  AssertOpen(info.Env());
  auto it = clients_.find(ArgU32(info, 0, "client"));
  if (it != clients_.end()) wl_client_destroy(it->second->client);
  return info.Env().Undefined();
}

// clientImplementationError(clientKey, message): wl_display.error implementation (fatal)
Napi::Value WlServer::ClientImplementationError(const Napi::CallbackInfo& info) {
  AssertOpen(info.Env());
  std::string message = ArgString(info, 1, "message");
  auto it = clients_.find(ArgU32(info, 0, "client"));
  if (it != clients_.end()) wl_client_post_implementation_error(it->second->client, "%s", message.c_str());
  MarkDirty();
  return info.Env().Undefined();
}

Napi::Value WlServer::NextSerial(const Napi::CallbackInfo& info) {
  AssertOpen(info.Env());
  return Napi::Number::New(info.Env(), wl_display_next_serial(display_));
}

Napi::Value WlServer::Destroy(const Napi::CallbackInfo& info) {
  if (display_ && dispatching_ > 0) {
    destroyPending_ = true;  // torn down as soon as libwayland returns
  } else if (display_) {
    Teardown();
    Unref();
  }
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// The direct lane: the steady state of one surface shown directly on a plane, without entering
// JavaScript. TypeScript (policy) arms it once a frame of the surface went to a plane and the
// buffers it may flip to are known (each with its framebuffer); from then on this code answers
// the surface's attach, damage, damage_buffer, frame and commit: a commit of a known buffer is an
// atomic commit of the same state with that framebuffer (its write fence as IN_FENCE_FD when
// pending), and at its flip the frame callbacks get done and the buffer it replaced a
// wl_buffer.release. A commit while a flip is in flight waits for it (the newest wins). Anything
// else (another request of the client, an unknown buffer, a refused commit, a destroyed buffer on
// screen, the client gone, or TypeScript's own laneDisarm) hands the lane back: the flip in
// flight completes first, then onHandback(report) tells TypeScript the state it left (current
// and shown buffer, the frame callbacks not answered yet, the pending attach) before the request
// that caused it is dispatched as usual.

// wl_surface request opcodes (the server header names events only)
enum : uint32_t { kAttach = 1, kDamage = 2, kFrame = 3, kCommit = 6, kDamageBuffer = 9 };

static constexpr uint64_t kLaneToken = 0x4c414e4500000000ull;  // "LANE": user_data of the lane's flips

void WlServer::OnLaneCallbackDestroyed(wl_resource* r) {
  auto* self = static_cast<WlServer*>(wl_resource_get_user_data(r));
  Lane& L = self->lane_;
  for (auto* v : {&L.pendingCallbacks, &L.inflightCallbacks, &L.queuedCallbacks}) {
    for (size_t i = 0; i < v->size(); i++) {
      if ((*v)[i] == r) {
        v->erase(v->begin() + static_cast<long>(i));
        break;
      }
    }
  }
}

void WlServer::LaneMaybeRelease(wl_resource* b) {
  Lane& L = lane_;
  if (!b || b == L.current || b == L.shown || b == L.inflight) return;
  auto it = L.buffers.find(b);
  if (it == L.buffers.end() || !it->second.owed) return;
  it->second.owed = false;
  wl_resource_post_event(b, WL_BUFFER_RELEASE);
}

bool WlServer::LaneRequest(wl_resource* r, uint32_t opcode, wl_argument* args) {
  Lane& L = lane_;
  switch (opcode) {
    case kAttach: {
      auto* b = reinterpret_cast<wl_resource*>(args[0].o);
      if (!b || args[1].i != 0 || args[2].i != 0 || L.buffers.find(b) == L.buffers.end()) return false;
      if (L.copy && L.sources.find(b) == L.sources.end()) return false;
      L.attached = true;
      L.pendingBuffer = b;
      return true;
    }
    case kDamage:
    case kDamageBuffer: {
      // a direct frame flips the whole buffer; a copy copies what changed (the surface's
      // coordinates are the buffer's: the copy mode is armed for transform 0, scale 1 only)
      if (L.copy) {
        int64_t x0 = std::max<int64_t>(args[0].i, 0), y0 = std::max<int64_t>(args[1].i, 0);
        int64_t x1 = static_cast<int64_t>(args[0].i) + std::max<int64_t>(args[2].i, 0);
        int64_t y1 = static_cast<int64_t>(args[1].i) + std::max<int64_t>(args[3].i, 0);
        int32_t box[4] = {static_cast<int32_t>(std::min<int64_t>(x0, INT32_MAX)), static_cast<int32_t>(std::min<int64_t>(y0, INT32_MAX)),
                          static_cast<int32_t>(std::min<int64_t>(x1, INT32_MAX)), static_cast<int32_t>(std::min<int64_t>(y1, INT32_MAX))};
        BoxUnion(L.damage, box);
      }
      return true;
    }
    case kFrame: {
      wl_resource* cb = wl_resource_create(L.client, &wl_callback_interface, wl_resource_get_version(r), args[0].n);
      if (!cb) {
        wl_client_post_no_memory(L.client);
        return true;
      }
      wl_resource_set_implementation(cb, nullptr, this, &WlServer::OnLaneCallbackDestroyed);
      L.pendingCallbacks.push_back(cb);
      return true;
    }
    case kCommit: {
      if (!L.attached) return false;
      wl_resource* prev = L.current;
      L.current = L.pendingBuffer;
      L.attached = false;
      L.pendingBuffer = nullptr;
      L.buffers[L.current].owed = true;
      LaneMaybeRelease(prev);
      L.totalCommits++;
      if (L.Flipping()) {
        // shown after the flip in flight; the callbacks of a commit it replaces wait with it
        L.queued = true;
        BoxUnion(L.queuedDamage, L.damage);
        for (int i = 0; i < 4; i++) L.damage[i] = 0;
        L.queuedCallbacks.insert(L.queuedCallbacks.end(), L.pendingCallbacks.begin(), L.pendingCallbacks.end());
        L.pendingCallbacks.clear();
        return true;
      }
      BoxUnion(L.queuedDamage, L.damage);  // what the copy needs: this commit's damage
      for (int i = 0; i < 4; i++) L.damage[i] = 0;
      std::vector<wl_resource*> cbs;
      cbs.swap(L.pendingCallbacks);
      LaneSubmit(cbs);
      return true;
    }
    default:
      return false;
  }
}

// The copy mode's copy: the current source into a free ring buffer, the damage since that buffer
// was written (clipped to the source), row by row inside the buffer's write bracket.
bool WlServer::LaneCopy(const int32_t* damage, uint32_t& fb) {
  Lane& L = lane_;
  int pick = -1;
  for (size_t i = 0; i < L.slots.size(); i++)
    if (static_cast<int>(i) != L.slotShown && static_cast<int>(i) != L.slotInflight) {
      pick = static_cast<int>(i);
      break;
    }
  if (pick < 0) return false;
  auto srcIt = L.sources.find(L.current);
  if (srcIt == L.sources.end()) return false;
  const LaneSource& src = srcIt->second;
  // the damage in destination coordinates, for the other buffers too
  int32_t d[4] = {0, 0, 0, 0};
  if (damage[0] < damage[2] && damage[1] < damage[3]) {
    d[0] = damage[0] + L.dx;
    d[1] = damage[1] + L.dy;
    d[2] = static_cast<int32_t>(std::min<int64_t>(static_cast<int64_t>(damage[2]) + L.dx, INT32_MAX));
    d[3] = static_cast<int32_t>(std::min<int64_t>(static_cast<int64_t>(damage[3]) + L.dy, INT32_MAX));
  }
  LaneSlot& slot = L.slots[pick];
  int32_t need[4] = {slot.stale[0], slot.stale[1], slot.stale[2], slot.stale[3]};
  BoxUnion(need, d);
  // back to source coordinates, within the source and the mode
  int64_t x0 = std::max<int64_t>({static_cast<int64_t>(need[0]) - L.dx, 0, -static_cast<int64_t>(L.dx)});
  int64_t y0 = std::max<int64_t>({static_cast<int64_t>(need[1]) - L.dy, 0, -static_cast<int64_t>(L.dy)});
  int64_t x1 = std::min<int64_t>({static_cast<int64_t>(need[2]) - L.dx, src.width, static_cast<int64_t>(L.modeW) - L.dx});
  int64_t y1 = std::min<int64_t>({static_cast<int64_t>(need[3]) - L.dy, src.height, static_cast<int64_t>(L.modeH) - L.dy});
  if (x1 > x0 && y1 > y0) {
    bool bracket = slot.dmabufFd >= 0 && DmabufSyncIoctl(slot.dmabufFd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE) == 0;
    size_t row = static_cast<size_t>(x1 - x0) * 4;
    // the copy fallback's stores (native/copy.cc): whole lines streamed, never reading the
    // destination, which is write-combined memory on real hardware
    for (int64_t y = y0; y < y1; y++)
      StreamCopy(slot.dst + static_cast<size_t>(y + L.dy) * slot.stride + static_cast<size_t>(x0 + L.dx) * 4,
                 src.src + static_cast<size_t>(y) * src.stride + static_cast<size_t>(x0) * 4, row);
    StreamFence();
    if (bracket) DmabufSyncIoctl(slot.dmabufFd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
    double n = static_cast<double>(row) * static_cast<double>(y1 - y0);
    L.bytes += n;
    L.totalBytes += n;
  }
  slot.stale[0] = slot.stale[1] = slot.stale[2] = slot.stale[3] = 0;
  for (size_t i = 0; i < L.slots.size(); i++)
    if (static_cast<int>(i) != pick) BoxUnion(L.slots[i].stale, d);
  L.slotInflight = pick;
  fb = slot.fb;
  return true;
}

void WlServer::LaneSubmit(std::vector<wl_resource*>& callbacks) {
  Lane& L = lane_;
  const LaneBuffer& b = L.buffers[L.current];
  if (L.copy) {
    uint32_t fb = 0;
    int32_t damage[4] = {L.queuedDamage[0], L.queuedDamage[1], L.queuedDamage[2], L.queuedDamage[3]};
    for (int i = 0; i < 4; i++) L.queuedDamage[i] = 0;
    if (!LaneCopy(damage, fb)) {
      // no free ring buffer (none expected: one is shown, none in flight): TypeScript copies it
      L.error = EBUSY;
      L.queued = true;
      L.queuedCallbacks.insert(L.queuedCallbacks.end(), callbacks.begin(), callbacks.end());
      LaneHandback("no ring buffer was free for the lane's copy");
      return;
    }
    L.values[L.fbSlot] = fb;
  } else {
    L.values[L.fbSlot] = b.fb;
  }
  int fence = -1;
  if (!L.copy && b.fd >= 0 && L.inFenceProp != 0) {
    struct pollfd p = {};
    p.fd = b.fd;
    p.events = POLLIN;
    int rc;
    do rc = poll(&p, 1, 0);
    while (rc < 0 && errno == EINTR);
    if (rc == 0) {  // writes pending: the plane waits for them (the kernel's own wait, no CPU here)
      struct dma_buf_export_sync_file x = {};
      x.flags = DMA_BUF_SYNC_READ;
      x.fd = -1;
      if (ioctl(b.fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &x) == 0) {
        fence = x.fd;
        L.fences++;
      }
    }
  }
  int err = 0;
  if (fence < 0) {
    L.aValues[L.aFb] = L.values[L.fbSlot];
    struct drm_mode_atomic a = {};
    a.flags = DRM_MODE_ATOMIC_NONBLOCK | DRM_MODE_PAGE_FLIP_EVENT;
    a.count_objs = static_cast<uint32_t>(L.aObjs.size());
    a.objs_ptr = reinterpret_cast<uint64_t>(L.aObjs.data());
    a.count_props_ptr = reinterpret_cast<uint64_t>(L.aCounts.data());
    a.props_ptr = reinterpret_cast<uint64_t>(L.aProps.data());
    a.prop_values_ptr = reinterpret_cast<uint64_t>(L.aValues.data());
    a.user_data = kLaneToken;
    if (drmIoctl(L.drmFd, DRM_IOCTL_MODE_ATOMIC, &a) != 0) err = errno;
  } else {
    drmModeAtomicReqPtr req = drmModeAtomicAlloc();
    if (!req) err = ENOMEM;
    for (size_t i = 0; !err && i < L.objs.size(); i++)
      if (drmModeAtomicAddProperty(req, L.objs[i], L.props[i], L.values[i]) < 0) err = errno ? errno : ENOMEM;
    if (!err && drmModeAtomicAddProperty(req, L.planeId, L.inFenceProp, static_cast<uint64_t>(fence)) < 0) err = errno ? errno : ENOMEM;
    if (!err && drmModeAtomicCommit(L.drmFd, req, DRM_MODE_ATOMIC_NONBLOCK | DRM_MODE_PAGE_FLIP_EVENT, reinterpret_cast<void*>(kLaneToken)) != 0)
      err = errno;
    if (req) drmModeAtomicFree(req);
  }
  if (fence >= 0) close(fence);  // the kernel holds its own reference
  if (err) {
    // not on screen: TypeScript gets the commit (its buffer current, its callbacks unanswered)
    L.slotInflight = -1;
    L.error = err;
    L.queued = true;
    L.queuedCallbacks.insert(L.queuedCallbacks.end(), callbacks.begin(), callbacks.end());
    LaneHandback("the kernel refused the lane's commit");
    return;
  }
  if (!L.copy) L.inflight = L.current;
  L.inflightCallbacks.swap(callbacks);
}

static int64_t CpuNs(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// PRIMEBUF_KIOSK_SLOWER for lane frames: the budget test's proof that a frame path 20 % slower
// fails it holds for the lane too. The process's CPU per frame (every thread: what the benchmark
// reads) is measured between flips without the spin, and this thread spins the fraction of its
// mean over the last 32 frames by its own CPU clock.
static void LaneSlowdown(Lane& L) {
  int64_t now = CpuNs(CLOCK_PROCESS_CPUTIME_ID);
  if (L.lastCpu >= 0) L.costs[L.costN++ % 32] = now - L.lastCpu;  // from after the last spin: without it
  if (L.costN >= 32) {
    int64_t sum = 0;
    for (int64_t c : L.costs) sum += c;
    int64_t target = static_cast<int64_t>(L.slower * static_cast<double>(sum) / 32.0);
    int64_t t0 = CpuNs(CLOCK_THREAD_CPUTIME_ID);
    volatile uint32_t x = 1;
    while (CpuNs(CLOCK_THREAD_CPUTIME_ID) - t0 < target)
      for (int i = 0; i < 256; i++) x = x * 1103515245u + 12345u;
    int64_t spun = CpuNs(CLOCK_THREAD_CPUTIME_ID) - t0;
    L.spunNs += static_cast<double>(spun);
    L.spunBaseNs += static_cast<double>(sum) / 32.0;
    L.spunFrames++;
  }
  L.lastCpu = CpuNs(CLOCK_PROCESS_CPUTIME_ID);
}

// The flip in flight is on screen: its buffer (direct) or ring buffer (copy) is the one shown.
static void LaneLanded(Lane& L) {
  L.shown = L.inflight;
  L.inflight = nullptr;
  if (L.copy) {
    L.slotShown = L.slotInflight;
    L.slotInflight = -1;
  }
}

void WlServer::LaneFlipped(uint32_t sec, uint32_t usec, uint32_t seq) {
  Lane& L = lane_;
  if (L.slower > 0) LaneSlowdown(L);
  wl_resource* old = L.shown;
  LaneLanded(L);
  L.frames++;
  L.totalFrames++;
  L.tvSec = sec;
  L.tvUsec = usec;
  L.sequence = seq;
  uint32_t ms;
  if (sec == 0 && usec == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ms = static_cast<uint32_t>(static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000);
  } else {
    ms = static_cast<uint32_t>(static_cast<uint64_t>(sec) * 1000 + usec / 1000);
  }
  // the release first: a client redraws on the done, and looks for a free buffer then
  if (old != L.shown) LaneMaybeRelease(old);
  std::vector<wl_resource*> cbs;
  cbs.swap(L.inflightCallbacks);
  for (wl_resource* cb : cbs) {
    wl_callback_send_done(cb, ms);
    wl_resource_destroy(cb);
  }
  MarkDirty();
  if (L.queued && !L.quiescing) {
    L.queued = false;
    std::vector<wl_resource*> q;
    q.swap(L.queuedCallbacks);
    LaneSubmit(q);
  }
}

bool WlServer::LaneReadEvents() {
  Lane& L = lane_;
  alignas(8) char buf[1024];
  ssize_t len;
  do len = read(L.drmFd, buf, sizeof buf);
  while (len < 0 && errno == EINTR);
  if (len <= 0) return false;
  bool flipped = false;
  ssize_t off = 0;
  while (off + static_cast<ssize_t>(sizeof(struct drm_event)) <= len) {
    struct drm_event ev;
    memcpy(&ev, buf + off, sizeof ev);
    if (ev.length < sizeof ev || off + static_cast<ssize_t>(ev.length) > len) break;
    if (ev.type == DRM_EVENT_FLIP_COMPLETE && ev.length >= sizeof(struct drm_event_vblank)) {
      struct drm_event_vblank vb;
      memcpy(&vb, buf + off, sizeof vb);
      if (vb.user_data == kLaneToken && L.Flipping()) {
        LaneFlipped(vb.tv_sec, vb.tv_usec, vb.sequence);
        flipped = true;
      } else {
        L.strayEvents++;
      }
    } else {
      L.strayEvents++;
    }
    off += ev.length;
  }
  return flipped;
}

void WlServer::OnLanePoll(uv_poll_t* h, int status, int events) {
  auto* self = static_cast<WlServer*>(h->data);
  if (!self || !self->display_ || !self->lane_.armed) return;
  self->pumping_ = true;
  self->LaneReadEvents();
  if (self->display_) self->FlushNow();
  self->EndPump();
}

void WlServer::LaneForget(wl_resource* r) {
  Lane& L = lane_;
  if (r == L.surface) {
    LaneHandback("its wl_surface was destroyed");
    return;
  }
  auto it = L.buffers.find(r);
  if (it == L.buffers.end()) return;
  if (r == L.current || r == L.shown || r == L.inflight || r == L.pendingBuffer) {
    LaneHandback("a wl_buffer it holds was destroyed");
    return;
  }
  L.buffers.erase(it);  // not in use: TypeScript frees it as usual
  L.sources.erase(r);
}

void WlServer::LaneHandback(const char* reason) {
  Lane& L = lane_;
  if (!L.armed) return;
  // the flip in flight completes first (at most a refresh): nothing of the lane's is pending in
  // the kernel when TypeScript takes over, and no event of its goes to TypeScript's reader
  L.quiescing = true;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (L.Flipping()) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long waited = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
    if (waited >= 2000) break;
    struct pollfd p = {};
    p.fd = L.drmFd;
    p.events = POLLIN;
    int rc = poll(&p, 1, static_cast<int>(2000 - waited));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) break;
    LaneReadEvents();
  }
  L.quiescing = false;
  if (L.Flipping()) {
    // no flip event within 2 s: counted as shown; its callbacks go back unanswered
    if (!L.error) L.error = ETIMEDOUT;
    L.queuedCallbacks.insert(L.queuedCallbacks.begin(), L.inflightCallbacks.begin(), L.inflightCallbacks.end());
    L.inflightCallbacks.clear();
    LaneLanded(L);
  }
  L.armed = false;
  if (L.poll) uv_poll_stop(L.poll);
  L.handbacks++;
  if (!display_) return;
  EnsureJsScope();  // (before any handle scope of ours: the callers open none)
  Napi::Env env = env_;
  Napi::HandleScope hs(env);
  Napi::Object out = Napi::Object::New(env);
  auto keyOf = [&](wl_resource* r) -> Napi::Value {
    if (!r) return env.Null();
    return Napi::Number::New(env, RecFor(r)->key);
  };
  auto callbacks = [&](std::vector<wl_resource*>& v) {
    Napi::Array a = Napi::Array::New(env, v.size());
    for (size_t i = 0; i < v.size(); i++) {
      Napi::Array pair = Napi::Array::New(env, 2);
      pair.Set(0u, Napi::Number::New(env, Track(v[i], &wl_callback_interface)->key));
      pair.Set(1u, Napi::Number::New(env, wl_resource_get_id(v[i])));
      a.Set(static_cast<uint32_t>(i), pair);
    }
    v.clear();
    return a;
  };
  out.Set("reason", Napi::String::New(env, reason));
  out.Set("error", L.error ? Napi::Value(Napi::String::New(env, ErrnoName(L.error))) : env.Null());
  out.Set("frames", Napi::Number::New(env, L.frames));
  out.Set("tvSec", Napi::Number::New(env, L.tvSec));
  out.Set("tvUsec", Napi::Number::New(env, L.tvUsec));
  out.Set("sequence", Napi::Number::New(env, L.sequence));
  out.Set("shown", keyOf(L.copy ? L.current : L.shown));
  out.Set("slotShown", Napi::Number::New(env, L.copy ? L.slotShown : -1));
  out.Set("bytes", Napi::Number::New(env, L.bytes));
  out.Set("current", keyOf(L.current));
  out.Set("committedCallbacks", callbacks(L.queuedCallbacks));
  out.Set("attached", Napi::Boolean::New(env, L.attached));
  out.Set("pendingBuffer", keyOf(L.pendingBuffer));
  out.Set("pendingCallbacks", callbacks(L.pendingCallbacks));
  Napi::Array owed = Napi::Array::New(env);
  uint32_t n = 0;
  for (auto& [b, lb] : L.buffers)
    if (lb.owed) owed.Set(n++, Napi::Number::New(env, RecFor(b)->key));
  out.Set("owed", owed);
  Napi::FunctionReference fn = std::move(L.onHandback);
  L.Drop();
  MarkDirty();
  if (!fn.IsEmpty()) CallJs(env, fn, {out});
}

// laneArm({ surface, drmFd, objs, props, values, fbSlot, planeId, inFenceProp, buffers: [key, fb,
//   fd, ...], current, currentOwed, copy?, slower? }, onHandback(report)): see the lane above.
// `current` is the surface's current buffer, on screen with no flip in flight; objs/props/values
// the state of its last commit, `fbSlot` the index of the plane's FB_ID in it; `copy` the copy
// mode's ring and sources (read below); `slower` the tests' PRIMEBUF_KIOSK_SLOWER.
Napi::Value WlServer::LaneArm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AssertOpen(env);
  if (lane_.armed) throw Napi::Error::New(env, "laneArm: the lane is armed already");
  if (!info[0].IsObject() || !info[1].IsFunction()) throw Napi::TypeError::New(env, "laneArm(options, onHandback)");
  Napi::Object o = info[0].As<Napi::Object>();
  Lane& L = lane_;
  ResourceRec* surface = ResourceByKey(env, o.Get("surface"), "laneArm surface");
  if (surface->iface != &wl_surface_interface) throw Napi::TypeError::New(env, "laneArm: surface is not a wl_surface");
  Napi::Value objsV = o.Get("objs"), propsV = o.Get("props"), valuesV = o.Get("values"), bufV = o.Get("buffers");
  if (!objsV.IsTypedArray() || !propsV.IsTypedArray() || !valuesV.IsTypedArray() || !bufV.IsArray())
    throw Napi::TypeError::New(env, "laneArm: objs, props (Uint32Array), values (BigUint64Array) and buffers (array) are required");
  Napi::Uint32Array objs = objsV.As<Napi::Uint32Array>();
  Napi::Uint32Array props = propsV.As<Napi::Uint32Array>();
  if (valuesV.As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array) throw Napi::TypeError::New(env, "laneArm: values must be a BigUint64Array");
  Napi::TypedArrayOf<uint64_t> values = valuesV.As<Napi::TypedArrayOf<uint64_t>>();
  size_t n = objs.ElementLength();
  if (props.ElementLength() != n || values.ElementLength() != n) throw Napi::RangeError::New(env, "laneArm: length mismatch");
  uint32_t fbSlot = o.Get("fbSlot").ToNumber().Uint32Value();
  if (fbSlot >= n) throw Napi::RangeError::New(env, "laneArm: fbSlot out of range");
  int drmFd = o.Get("drmFd").ToNumber().Int32Value();
  if (drmFd < 0) throw Napi::RangeError::New(env, "laneArm: drmFd");
  std::unordered_map<wl_resource*, LaneBuffer> buffers;
  Napi::Array b = bufV.As<Napi::Array>();
  if (b.Length() % 3 != 0) throw Napi::RangeError::New(env, "laneArm: buffers holds [key, fb, fd] triples");
  for (uint32_t i = 0; i < b.Length(); i += 3) {
    ResourceRec* r = ResourceByKey(env, b.Get(i), "laneArm buffer");
    if (r->iface != &wl_buffer_interface || wl_resource_get_client(r->resource) != wl_resource_get_client(surface->resource))
      throw Napi::TypeError::New(env, "laneArm: a buffer is not a wl_buffer of the surface's client");
    buffers[r->resource] = LaneBuffer{b.Get(i + 1).ToNumber().Uint32Value(), b.Get(i + 2).ToNumber().Int32Value(), false};
  }
  ResourceRec* current = ResourceByKey(env, o.Get("current"), "laneArm current");
  auto cur = buffers.find(current->resource);
  if (cur == buffers.end()) throw Napi::RangeError::New(env, "laneArm: the current buffer is not among the buffers");
  // copy mode: { slots: [{ fb, memory: ArrayBuffer, stride, dmabufFd }], slotShown, dx, dy, modeW,
  //   modeH, sources: [[key, memory: ArrayBuffer, offset, stride, width, height], ...] }
  // (XRGB8888/ARGB8888 sources into a ring of the same 4-byte format: rows copied as they are)
  std::vector<LaneSlot> slots;
  std::unordered_map<wl_resource*, LaneSource> sources;
  int slotShown = -1;
  int32_t cdx = 0, cdy = 0, modeW = 0, modeH = 0;
  Napi::Value copyV = o.Get("copy");
  bool copy = copyV.IsObject();
  if (copy) {
    Napi::Object c = copyV.As<Napi::Object>();
    modeW = c.Get("modeW").ToNumber().Int32Value();
    modeH = c.Get("modeH").ToNumber().Int32Value();
    cdx = c.Get("dx").ToNumber().Int32Value();
    cdy = c.Get("dy").ToNumber().Int32Value();
    slotShown = c.Get("slotShown").ToNumber().Int32Value();
    Napi::Value sv = c.Get("slots"), srcv = c.Get("sources");
    if (!sv.IsArray() || !srcv.IsArray()) throw Napi::TypeError::New(env, "laneArm: copy needs slots and sources arrays");
    Napi::Array sa = sv.As<Napi::Array>();
    for (uint32_t i = 0; i < sa.Length(); i++) {
      Napi::Object so = sa.Get(i).As<Napi::Object>();
      Napi::Value mem = so.Get("memory");
      if (!mem.IsArrayBuffer()) throw Napi::TypeError::New(env, "laneArm: a ring slot's memory must be an ArrayBuffer");
      Napi::ArrayBuffer ab = mem.As<Napi::ArrayBuffer>();
      uint32_t stride = so.Get("stride").ToNumber().Uint32Value();
      if (static_cast<uint64_t>(stride) * static_cast<uint64_t>(modeH) > ab.ByteLength() || static_cast<uint64_t>(modeW) * 4 > stride)
        throw Napi::RangeError::New(env, "laneArm: a ring slot is smaller than the mode");
      LaneSlot slot{so.Get("fb").ToNumber().Uint32Value(), static_cast<uint8_t*>(ab.Data()), stride, so.Get("dmabufFd").ToNumber().Int32Value(), {0, 0, modeW, modeH}};
      if (static_cast<int>(i) == slotShown) slot.stale[0] = slot.stale[1] = slot.stale[2] = slot.stale[3] = 0;  // it holds the current frame
      slots.push_back(slot);
    }
    if (slots.size() < 2 || slotShown < 0 || slotShown >= static_cast<int>(slots.size())) throw Napi::RangeError::New(env, "laneArm: copy needs 2 ring slots or more, one of them shown");
    Napi::Array src = srcv.As<Napi::Array>();
    for (uint32_t i = 0; i < src.Length(); i++) {
      Napi::Array e = src.Get(i).As<Napi::Array>();
      ResourceRec* r = ResourceByKey(env, e.Get(0u), "laneArm source");
      if (buffers.find(r->resource) == buffers.end()) throw Napi::RangeError::New(env, "laneArm: a copy source is not among the buffers");
      Napi::Value mem = e.Get(1u);
      if (!mem.IsArrayBuffer()) throw Napi::TypeError::New(env, "laneArm: a source's memory must be an ArrayBuffer");
      Napi::ArrayBuffer ab = mem.As<Napi::ArrayBuffer>();
      uint64_t offset = e.Get(2u).ToNumber().Int64Value();
      uint32_t stride = e.Get(3u).ToNumber().Uint32Value(), width = e.Get(4u).ToNumber().Uint32Value(), height = e.Get(5u).ToNumber().Uint32Value();
      if (width == 0 || height == 0 || static_cast<uint64_t>(width) * 4 > stride ||
          offset + static_cast<uint64_t>(stride) * (height - 1) + static_cast<uint64_t>(width) * 4 > ab.ByteLength())
        throw Napi::RangeError::New(env, "laneArm: a copy source does not fit its memory");
      sources[r->resource] = LaneSource{static_cast<const uint8_t*>(ab.Data()) + offset, stride, width, height};
    }
    if (sources.find(current->resource) == sources.end()) throw Napi::RangeError::New(env, "laneArm: the current buffer is not among the copy sources");
  }
  cur->second.owed = o.Get("currentOwed").ToBoolean();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) throw Napi::Error::New(env, "no libuv loop");
  if (L.poll && L.drmFd != drmFd) {
    uv_close(reinterpret_cast<uv_handle_t*>(L.poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    L.poll = nullptr;
  }
  if (!L.poll) {
    L.poll = new uv_poll_t;
    int rc = uv_poll_init(loop, L.poll, drmFd);
    if (rc != 0) {
      delete L.poll;
      L.poll = nullptr;
      ThrowErrno(env, -rc, "uv_poll_init", "DRM fd of the lane");
    }
    L.poll->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(L.poll));
  }
  int rc = uv_poll_start(L.poll, UV_READABLE, &WlServer::OnLanePoll);
  if (rc != 0) ThrowErrno(env, -rc, "uv_poll_start", "DRM fd of the lane");
  L.drmFd = drmFd;
  L.objs.assign(objs.Data(), objs.Data() + n);
  L.props.assign(props.Data(), props.Data() + n);
  L.values.assign(values.Data(), values.Data() + n);
  L.fbSlot = fbSlot;
  L.aObjs.clear();
  L.aCounts.clear();
  L.aProps.clear();
  L.aValues.clear();
  for (size_t i = 0; i < n; i++) {
    bool seen = false;
    for (uint32_t x : L.aObjs) seen = seen || x == L.objs[i];
    if (seen) continue;
    L.aObjs.push_back(L.objs[i]);
    uint32_t count = 0;
    for (size_t j = i; j < n; j++) {
      if (L.objs[j] != L.objs[i]) continue;
      if (j == fbSlot) L.aFb = L.aValues.size();
      L.aProps.push_back(L.props[j]);
      L.aValues.push_back(L.values[j]);
      count++;
    }
    L.aCounts.push_back(count);
  }
  L.planeId = o.Get("planeId").ToNumber().Uint32Value();
  L.inFenceProp = o.Get("inFenceProp").ToNumber().Uint32Value();
  L.Drop();
  L.buffers.swap(buffers);
  L.copy = copy;
  L.slots.swap(slots);
  L.sources.swap(sources);
  L.slotShown = slotShown;
  L.dx = cdx;
  L.dy = cdy;
  L.modeW = modeW;
  L.modeH = modeH;
  L.bytes = 0;
  L.surface = surface->resource;
  L.client = wl_resource_get_client(surface->resource);
  L.current = current->resource;
  L.shown = copy ? nullptr : current->resource;
  L.frames = 0;
  L.tvSec = L.tvUsec = L.sequence = 0;
  L.error = 0;
  L.onHandback = Napi::Persistent(info[1].As<Napi::Function>());
  Napi::Value slower = o.Get("slower");
  L.slower = slower.IsNumber() ? slower.As<Napi::Number>().DoubleValue() : 0;
  L.lastCpu = -1;
  L.costN = 0;
  L.armed = true;
  return env.Undefined();
}

// laneDisarm(reason) -> whether it was armed (then onHandback ran before this returns)
Napi::Value WlServer::LaneDisarm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!lane_.armed) return Napi::Boolean::New(env, false);
  std::string reason = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : std::string("disarmed");
  LaneHandback(reason.c_str());
  return Napi::Boolean::New(env, true);
}

// laneStats() -> { armed, frames, bytesCopied, commits, handbacks, strayEvents, fences, spunFrames,
//   spunMs, spunBaseMs } over the server's life (WlLaneStats in src/native/wayland.ts)
Napi::Value WlServer::LaneStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("armed", Napi::Boolean::New(env, lane_.armed));
  o.Set("frames", Napi::Number::New(env, lane_.totalFrames));
  o.Set("bytesCopied", Napi::Number::New(env, lane_.totalBytes));
  o.Set("commits", Napi::Number::New(env, lane_.totalCommits));
  o.Set("handbacks", Napi::Number::New(env, lane_.handbacks));
  o.Set("strayEvents", Napi::Number::New(env, lane_.strayEvents));
  o.Set("fences", Napi::Number::New(env, lane_.fences));
  o.Set("spunFrames", Napi::Number::New(env, lane_.spunFrames));
  o.Set("spunMs", Napi::Number::New(env, lane_.spunNs / 1e6));
  o.Set("spunBaseMs", Napi::Number::New(env, lane_.spunBaseNs / 1e6));
  return o;
}

// wlSealedMemfd(name, bytes) -> fd: a memfd holding `bytes`, sealed against every change
// (shrink, grow, write, further seals). For linux-dmabuf format tables shared by all clients.
Napi::Value SealedMemfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "name");
  if (!info[1].IsTypedArray()) throw Napi::TypeError::New(env, "wlSealedMemfd: bytes must be a Uint8Array");
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  const uint8_t* data = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  size_t size = ta.ByteLength();
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) ThrowErrno(env, errno, "memfd_create", name);
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      close(fd);
      ThrowErrno(env, err, "write", name);
    }
    done += static_cast<size_t>(n);
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, "fcntl(F_ADD_SEALS)", name);
  }
  return Napi::Number::New(env, fd);
}

// wlFdIdentity(fd) -> 'dev:ino' of the open file (tests: two fds name the same file).
Napi::Value FdIdentity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct stat st;
  if (fstat(fd, &st) != 0) ThrowErrno(env, errno, "fstat", "fd " + std::to_string(fd));
  return Napi::String::New(env, std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino));
}

// wlReadFd(fd, size) -> Buffer via mmap(PROT_READ, MAP_PRIVATE), as a client maps a format table
Napi::Value ReadFdPrivate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t size = ArgU32(info, 1, "size");
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, size);
  if (size == 0) return out;
  void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) ThrowErrno(env, errno, "mmap", "fd " + std::to_string(fd));
  memcpy(out.Data(), p, size);
  munmap(p, size);
  return out;
}

}  // namespace

void InitWaylandServer(Napi::Env env, Napi::Object exports) {
  exports.Set("WlServer", WlServer::Define(env));
  exports.Set("wlSealedMemfd", Napi::Function::New(env, SealedMemfd, "wlSealedMemfd"));
  exports.Set("wlFdIdentity", Napi::Function::New(env, FdIdentity, "wlFdIdentity"));
  exports.Set("wlReadFdPrivate", Napi::Function::New(env, ReadFdPrivate, "wlReadFdPrivate"));
}

}  // namespace primebuf
