// egl: EGL's dma-buf import queries for one DRM node (mechanism only).
//
// libEGL is loaded at run time (dlopen "libEGL.so.1"), so the addon loads on machines without
// it; extension entry points come from eglGetProcAddress. eglQueryDmaBufFormats(path) makes an
// EGLDisplay for the node (EGL_EXT_device_enumeration + EGL_EXT_platform_device, the device
// whose DRM device or render node file is the same character device as `path`; else, when
// built with GBM, EGL_PLATFORM_GBM_KHR over gbm_create_device on the opened node), runs
// eglQueryDmaBufFormatsEXT/eglQueryDmaBufModifiersEXT and terminates the display again.
// Failures throw an Error whose `code` is 'EGL_UNAVAILABLE', 'EGL_NO_DEVICE',
// 'EGL_NOT_INITIALIZED', 'EGL_NO_DMABUF_MODIFIERS' or 'EGL_QUERY_FAILED' (with `eglError`);
// what to do about it is policy (src/constraints/egl.ts).
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#ifdef PRIMEBUF_HAVE_GBM
#include <gbm.h>
#endif

#include "common.h"

namespace primebuf {
namespace {

struct EglApi {
  bool tried = false;
  void* lib = nullptr;
  std::string loadError;
  PFNEGLGETPROCADDRESSPROC getProcAddress = nullptr;
  PFNEGLQUERYSTRINGPROC queryString = nullptr;
  PFNEGLINITIALIZEPROC initialize = nullptr;
  PFNEGLTERMINATEPROC terminate = nullptr;
  PFNEGLGETERRORPROC getError = nullptr;
  PFNEGLRELEASETHREADPROC releaseThread = nullptr;
  PFNEGLQUERYDEVICESEXTPROC queryDevices = nullptr;
  PFNEGLQUERYDEVICESTRINGEXTPROC queryDeviceString = nullptr;
  PFNEGLGETPLATFORMDISPLAYEXTPROC getPlatformDisplay = nullptr;
  PFNEGLQUERYDMABUFFORMATSEXTPROC queryDmaBufFormats = nullptr;
  PFNEGLQUERYDMABUFMODIFIERSEXTPROC queryDmaBufModifiers = nullptr;
  PFNEGLGETDISPLAYDRIVERNAMEPROC getDisplayDriverName = nullptr;
};

// libEGL stays loaded once found: EGL implementations do not support being unloaded.
EglApi& Api() {
  static EglApi api;
  if (api.tried) return api;
  api.tried = true;
  api.lib = dlopen("libEGL.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!api.lib) {
    const char* e = dlerror();
    api.loadError = e ? e : "dlopen(libEGL.so.1) failed";
    return api;
  }
  api.getProcAddress = reinterpret_cast<PFNEGLGETPROCADDRESSPROC>(dlsym(api.lib, "eglGetProcAddress"));
  api.queryString = reinterpret_cast<PFNEGLQUERYSTRINGPROC>(dlsym(api.lib, "eglQueryString"));
  api.initialize = reinterpret_cast<PFNEGLINITIALIZEPROC>(dlsym(api.lib, "eglInitialize"));
  api.terminate = reinterpret_cast<PFNEGLTERMINATEPROC>(dlsym(api.lib, "eglTerminate"));
  api.getError = reinterpret_cast<PFNEGLGETERRORPROC>(dlsym(api.lib, "eglGetError"));
  api.releaseThread = reinterpret_cast<PFNEGLRELEASETHREADPROC>(dlsym(api.lib, "eglReleaseThread"));
  if (!api.getProcAddress || !api.queryString || !api.initialize || !api.terminate || !api.getError) {
    api.loadError = "libEGL.so.1 lacks core EGL entry points";
    api.lib = nullptr;
    return api;
  }
  auto ext = [&](const char* name) { return reinterpret_cast<void*>(api.getProcAddress(name)); };
  api.queryDevices = reinterpret_cast<PFNEGLQUERYDEVICESEXTPROC>(ext("eglQueryDevicesEXT"));
  api.queryDeviceString = reinterpret_cast<PFNEGLQUERYDEVICESTRINGEXTPROC>(ext("eglQueryDeviceStringEXT"));
  api.getPlatformDisplay = reinterpret_cast<PFNEGLGETPLATFORMDISPLAYEXTPROC>(ext("eglGetPlatformDisplayEXT"));
  api.queryDmaBufFormats = reinterpret_cast<PFNEGLQUERYDMABUFFORMATSEXTPROC>(ext("eglQueryDmaBufFormatsEXT"));
  api.queryDmaBufModifiers = reinterpret_cast<PFNEGLQUERYDMABUFMODIFIERSEXTPROC>(ext("eglQueryDmaBufModifiersEXT"));
  api.getDisplayDriverName = reinterpret_cast<PFNEGLGETDISPLAYDRIVERNAMEPROC>(ext("eglGetDisplayDriverName"));
  return api;
}

bool HasExtension(const char* list, const char* name) {
  if (!list) return false;
  size_t n = strlen(name);
  for (const char* p = list; (p = strstr(p, name)) != nullptr; p += n) {
    bool startOk = p == list || p[-1] == ' ';
    bool endOk = p[n] == '\0' || p[n] == ' ';
    if (startOk && endOk) return true;
  }
  return false;
}

[[noreturn]] void ThrowEgl(Napi::Env env, const char* code, const std::string& message, EGLint eglError = 0) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  if (eglError != 0) err.Set("eglError", Napi::Number::New(env, eglError));
  throw err;
}

std::string Hex(EGLint v) {
  char buf[16];
  snprintf(buf, sizeof buf, "0x%04x", static_cast<unsigned>(v));
  return buf;
}

// Everything opened for one query, released in reverse order on every path.
struct Session {
  EglApi& api;
  int fd = -1;
#ifdef PRIMEBUF_HAVE_GBM
  struct gbm_device* gbm = nullptr;
#endif
  EGLDisplay dpy = EGL_NO_DISPLAY;
  bool initialized = false;
  explicit Session(EglApi& a) : api(a) {}
  ~Session() {
    if (initialized) api.terminate(dpy);
    if (api.releaseThread) api.releaseThread();
#ifdef PRIMEBUF_HAVE_GBM
    if (gbm) gbm_device_destroy(gbm);
#endif
    if (fd >= 0) close(fd);
  }
};

bool SameDevice(const char* file, dev_t rdev) {
  struct stat st;
  return file && stat(file, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == rdev;
}

Napi::Value QueryDmaBufFormats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "path");
  EglApi& api = Api();
  if (!api.lib) ThrowEgl(env, "EGL_UNAVAILABLE", "libEGL is not available: " + api.loadError);

  Session s(api);
  s.fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (s.fd < 0) ThrowErrno(env, errno, "open", path);
  struct stat st;
  if (fstat(s.fd, &st) != 0) ThrowErrno(env, errno, "fstat", path);
  // 226: DRM_MAJOR. Mesa would otherwise hand back a software display for any character device.
  if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 226) ThrowErrno(env, ENODEV, "fstat", path + " is not a DRM node");

  const char* clientExts = api.queryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
  std::string platform;
  std::string tried;
  // 1. EGL_EXT_device_enumeration: the EGLDevice whose DRM file is this node.
  if (api.queryDevices && api.queryDeviceString && api.getPlatformDisplay &&
      HasExtension(clientExts, "EGL_EXT_platform_device")) {
    EGLint n = 0;
    if (api.queryDevices(0, nullptr, &n) && n > 0) {
      std::vector<EGLDeviceEXT> devs(static_cast<size_t>(n));
      if (api.queryDevices(n, devs.data(), &n)) {
        for (EGLint i = 0; i < n && s.dpy == EGL_NO_DISPLAY; i++) {
          const char* devExts = api.queryDeviceString(devs[i], EGL_EXTENSIONS);
          bool match = false;
          if (HasExtension(devExts, "EGL_EXT_device_drm")) match = SameDevice(api.queryDeviceString(devs[i], EGL_DRM_DEVICE_FILE_EXT), st.st_rdev);
          if (!match && HasExtension(devExts, "EGL_EXT_device_drm_render_node"))
            match = SameDevice(api.queryDeviceString(devs[i], EGL_DRM_RENDER_NODE_FILE_EXT), st.st_rdev);
          if (!match) continue;
          s.dpy = api.getPlatformDisplay(EGL_PLATFORM_DEVICE_EXT, devs[i], nullptr);
          if (s.dpy != EGL_NO_DISPLAY) platform = "device";
        }
      }
      api.getError();  // a failed device string query leaves an error behind
    }
    if (s.dpy == EGL_NO_DISPLAY) tried += "no EGLDevice has this DRM node; ";
  } else {
    tried += "no EGL_EXT_device_enumeration/EGL_EXT_platform_device; ";
  }
#ifdef PRIMEBUF_HAVE_GBM
  // 2. EGL_PLATFORM_GBM_KHR over a GBM device on the node.
  if (s.dpy == EGL_NO_DISPLAY && api.getPlatformDisplay &&
      (HasExtension(clientExts, "EGL_KHR_platform_gbm") || HasExtension(clientExts, "EGL_MESA_platform_gbm"))) {
    s.gbm = gbm_create_device(s.fd);
    if (!s.gbm) {
      tried += "gbm_create_device failed; ";
    } else {
      s.dpy = api.getPlatformDisplay(EGL_PLATFORM_GBM_KHR, s.gbm, nullptr);
      if (s.dpy != EGL_NO_DISPLAY) platform = "gbm";
      else tried += "no EGLDisplay for the GBM device (" + Hex(api.getError()) + "); ";
    }
  } else if (s.dpy == EGL_NO_DISPLAY) {
    tried += "no EGL_KHR_platform_gbm; ";
  }
#else
  if (s.dpy == EGL_NO_DISPLAY) tried += "built without GBM; ";
#endif
  if (s.dpy == EGL_NO_DISPLAY) ThrowEgl(env, "EGL_NO_DEVICE", "no EGLDisplay for " + path + ": " + tried);

  EGLint major = 0, minor = 0;
  if (!api.initialize(s.dpy, &major, &minor)) {
    EGLint e = api.getError();
    ThrowEgl(env, "EGL_NOT_INITIALIZED", "eglInitialize failed for " + path + " (" + platform + " platform): " + Hex(e), e);
  }
  s.initialized = true;
  const char* vendor = api.queryString(s.dpy, EGL_VENDOR);
  const char* version = api.queryString(s.dpy, EGL_VERSION);
  const char* dpyExts = api.queryString(s.dpy, EGL_EXTENSIONS);
  const char* driver = nullptr;
  if (api.getDisplayDriverName && HasExtension(dpyExts, "EGL_MESA_query_driver")) driver = api.getDisplayDriverName(s.dpy);

  if (!HasExtension(dpyExts, "EGL_EXT_image_dma_buf_import_modifiers") || !api.queryDmaBufFormats || !api.queryDmaBufModifiers) {
    ThrowEgl(env, "EGL_NO_DMABUF_MODIFIERS",
             "the EGL display of " + path + " (" + (vendor ? vendor : "?") + ") lacks EGL_EXT_image_dma_buf_import_modifiers");
  }
  EGLint nf = 0;
  if (!api.queryDmaBufFormats(s.dpy, 0, nullptr, &nf)) {
    EGLint e = api.getError();
    ThrowEgl(env, "EGL_QUERY_FAILED", "eglQueryDmaBufFormatsEXT failed for " + path + ": " + Hex(e), e);
  }
  std::vector<EGLint> formats(static_cast<size_t>(nf));
  if (nf > 0 && !api.queryDmaBufFormats(s.dpy, nf, formats.data(), &nf)) {
    EGLint e = api.getError();
    ThrowEgl(env, "EGL_QUERY_FAILED", "eglQueryDmaBufFormatsEXT failed for " + path + ": " + Hex(e), e);
  }
  Napi::Array out = Napi::Array::New(env);
  uint32_t oi = 0;
  for (EGLint i = 0; i < nf; i++) {
    EGLint nm = 0;
    if (!api.queryDmaBufModifiers(s.dpy, formats[i], 0, nullptr, nullptr, &nm)) {
      EGLint e = api.getError();
      ThrowEgl(env, "EGL_QUERY_FAILED", "eglQueryDmaBufModifiersEXT failed for format " + Hex(formats[i]) + ": " + Hex(e), e);
    }
    std::vector<EGLuint64KHR> mods(static_cast<size_t>(nm));
    std::vector<EGLBoolean> ext(static_cast<size_t>(nm));
    if (nm > 0 && !api.queryDmaBufModifiers(s.dpy, formats[i], nm, mods.data(), ext.data(), &nm)) {
      EGLint e = api.getError();
      ThrowEgl(env, "EGL_QUERY_FAILED", "eglQueryDmaBufModifiersEXT failed for format " + Hex(formats[i]) + ": " + Hex(e), e);
    }
    Napi::Array list = Napi::Array::New(env);
    for (EGLint j = 0; j < nm; j++) {
      Napi::Object m = Napi::Object::New(env);
      m.Set("modifier", U64(env, mods[j]));
      m.Set("externalOnly", Napi::Boolean::New(env, ext[j] == EGL_TRUE));
      list.Set(static_cast<uint32_t>(j), m);
    }
    Napi::Object f = Napi::Object::New(env);
    f.Set("format", Napi::Number::New(env, static_cast<uint32_t>(formats[i])));
    f.Set("modifiers", list);
    out.Set(oi++, f);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("platform", Napi::String::New(env, platform));
  result.Set("vendor", vendor ? Napi::Value(Napi::String::New(env, vendor)) : env.Null());
  result.Set("version", version ? Napi::Value(Napi::String::New(env, version)) : env.Null());
  result.Set("driver", driver ? Napi::Value(Napi::String::New(env, driver)) : env.Null());
  result.Set("formats", out);
  return result;
}

Napi::Value EglAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Api().lib != nullptr);
}

}  // namespace

void InitEgl(Napi::Env env, Napi::Object exports) {
  exports.Set("eglQueryDmaBufFormats", Napi::Function::New(env, QueryDmaBufFormats, "eglQueryDmaBufFormats"));
  exports.Set("eglAvailable", Napi::Function::New(env, EglAvailable, "eglAvailable"));
}

}  // namespace primebuf
