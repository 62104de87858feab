// The kernel's floor for one page flip: a minimal C program (raw DRM ioctls, no libdrm) that
// opens a KMS device, puts one of two dumb-buffer framebuffers on the primary plane with a
// modeset, then loops page flips through non-blocking atomic commits with a page-flip event,
// waiting for and reading each event. Per flip it sets what the kiosk's presenter sets on a
// direct frame (FB_ID, CRTC_ID, the SRC_* and CRTC_* rectangle, rotation when the plane has it),
// and in a second loop FB_ID alone. Prints one JSON line per loop: CPU (user + sys from
// getrusage) per flip, the commit ioctl's own CPU (CLOCK_THREAD_CPUTIME_ID around it), the
// frame rate.
//
// Built with the host's gcc by bench/flip-floor.sh, run in the vkms guest (same glibc):
//   node scripts/vkms-vm.mjs run -- bash bench/flip-floor.sh [FLIPS]
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libdrm/drm.h>
#include <libdrm/drm_mode.h>

static void die(const char *what) {
  fprintf(stderr, "flip-floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void xioctl(int fd, unsigned long req, void *arg, const char *what) {
  int r;
  do r = ioctl(fd, req, arg);
  while (r < 0 && (errno == EINTR || errno == EAGAIN));
  if (r < 0) die(what);
}

static double now_ms(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double rusage_ms(double *user, double *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3;
  *sys = ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
  return *user + *sys;
}

/** The id of property `name` of object `obj` (0 when it has none). */
static uint32_t prop_id(int fd, uint32_t obj, uint32_t type, const char *name, uint64_t *value) {
  uint32_t ids[64];
  uint64_t vals[64];
  struct drm_mode_obj_get_properties gp = {0};
  gp.obj_id = obj;
  gp.obj_type = type;
  gp.props_ptr = (uintptr_t)ids;
  gp.prop_values_ptr = (uintptr_t)vals;
  gp.count_props = 64;
  xioctl(fd, DRM_IOCTL_MODE_OBJ_GETPROPERTIES, &gp, "OBJ_GETPROPERTIES");
  for (uint32_t i = 0; i < gp.count_props && i < 64; i++) {
    struct drm_mode_get_property p = {0};
    p.prop_id = ids[i];
    xioctl(fd, DRM_IOCTL_MODE_GETPROPERTY, &p, "GETPROPERTY");
    if (strcmp(p.name, name) == 0) {
      if (value) *value = vals[i];
      return ids[i];
    }
  }
  return 0;
}

static uint32_t need_prop(int fd, uint32_t obj, uint32_t type, const char *name) {
  uint32_t id = prop_id(fd, obj, type, name, NULL);
  if (!id) {
    fprintf(stderr, "flip-floor: object %u has no property %s\n", obj, name);
    exit(1);
  }
  return id;
}

struct req {
  uint32_t objs[16], counts[16], props[16];
  uint64_t values[16];
  unsigned nobj, nprop;
};

static void req_add(struct req *r, uint32_t obj, uint32_t prop, uint64_t value) {
  if (r->nobj == 0 || r->objs[r->nobj - 1] != obj) r->objs[r->nobj++] = obj, r->counts[r->nobj - 1] = 0;
  r->counts[r->nobj - 1]++;
  r->props[r->nprop] = prop;
  r->values[r->nprop++] = value;
}

static void req_commit(int fd, struct req *r, uint32_t flags) {
  struct drm_mode_atomic a = {0};
  a.flags = flags;
  a.count_objs = r->nobj;
  a.objs_ptr = (uintptr_t)r->objs;
  a.count_props_ptr = (uintptr_t)r->counts;
  a.props_ptr = (uintptr_t)r->props;
  a.prop_values_ptr = (uintptr_t)r->values;
  xioctl(fd, DRM_IOCTL_MODE_ATOMIC, &a, "ATOMIC");
}

/** Waits for and reads one DRM event (a flip-complete). */
static void read_event(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (poll(&p, 1, 1000) != 1)
    if (errno != EINTR) die("poll (no page-flip event within 1 s)");
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < (ssize_t)sizeof(struct drm_event)) die("read DRM event");
  struct drm_event *e = (struct drm_event *)buf;
  if (e->type != DRM_EVENT_FLIP_COMPLETE) {
    fprintf(stderr, "flip-floor: event type %u, not a flip-complete\n", e->type);
    exit(1);
  }
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "/dev/dri/card0";
  int flips = argc > 2 ? atoi(argv[2]) : 300;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) die(path);
  struct drm_set_client_cap cap = {DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1};
  xioctl(fd, DRM_IOCTL_SET_CLIENT_CAP, &cap, "UNIVERSAL_PLANES");
  cap.capability = DRM_CLIENT_CAP_ATOMIC;
  xioctl(fd, DRM_IOCTL_SET_CLIENT_CAP, &cap, "ATOMIC");

  uint32_t crtcs[8], conns[8];
  struct drm_mode_card_res res = {0};
  res.crtc_id_ptr = (uintptr_t)crtcs;
  res.connector_id_ptr = (uintptr_t)conns;
  res.count_crtcs = 8;
  res.count_connectors = 8;
  xioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res, "GETRESOURCES");
  if (res.count_crtcs < 1 || res.count_connectors < 1) die("no CRTC or connector");
  uint32_t crtc = crtcs[0], conn = conns[0];

  struct drm_mode_get_connector gc = {0};
  gc.connector_id = conn;
  xioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &gc, "GETCONNECTOR"); // probes; counts only
  if (gc.count_modes < 1) die("connector without modes");
  uint32_t nmodes = gc.count_modes;
  struct drm_mode_modeinfo *modes = calloc(nmodes, sizeof *modes);
  memset(&gc, 0, sizeof gc);
  gc.connector_id = conn;
  gc.modes_ptr = (uintptr_t)modes;
  gc.count_modes = nmodes;
  xioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &gc, "GETCONNECTOR");
  if (gc.count_modes > nmodes) die("connector modes changed");
  struct drm_mode_modeinfo mode = modes[0];
  for (uint32_t i = 0; i < gc.count_modes; i++)
    if (modes[i].type & DRM_MODE_TYPE_PREFERRED) {
      mode = modes[i];
      break;
    }
  free(modes);
  uint32_t w = mode.hdisplay, h = mode.vdisplay;

  // the primary plane of CRTC 0
  uint32_t planes[32];
  struct drm_mode_get_plane_res pr = {0};
  pr.plane_id_ptr = (uintptr_t)planes;
  pr.count_planes = 32;
  xioctl(fd, DRM_IOCTL_MODE_GETPLANERESOURCES, &pr, "GETPLANERESOURCES");
  uint32_t primary = 0;
  for (uint32_t i = 0; i < pr.count_planes && i < 32 && !primary; i++) {
    struct drm_mode_get_plane gp = {0};
    gp.plane_id = planes[i];
    xioctl(fd, DRM_IOCTL_MODE_GETPLANE, &gp, "GETPLANE");
    uint64_t type = 0;
    if ((gp.possible_crtcs & 1) && prop_id(fd, planes[i], DRM_MODE_OBJECT_PLANE, "type", &type) && type == 1) primary = planes[i];
  }
  if (!primary) die("no primary plane");

  struct drm_mode_create_blob blob = {0};
  blob.data = (uintptr_t)&mode;
  blob.length = sizeof mode;
  xioctl(fd, DRM_IOCTL_MODE_CREATEPROPBLOB, &blob, "CREATEPROPBLOB");

  uint32_t fbs[2];
  for (int i = 0; i < 2; i++) {
    struct drm_mode_create_dumb d = {0};
    d.width = w;
    d.height = h;
    d.bpp = 32;
    xioctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &d, "CREATE_DUMB");
    struct drm_mode_fb_cmd2 f = {0};
    f.width = w;
    f.height = h;
    f.pixel_format = 0x34325258; // XR24
    f.handles[0] = d.handle;
    f.pitches[0] = d.pitch;
    xioctl(fd, DRM_IOCTL_MODE_ADDFB2, &f, "ADDFB2");
    fbs[i] = f.fb_id;
  }

  uint32_t p_fb = need_prop(fd, primary, DRM_MODE_OBJECT_PLANE, "FB_ID");
  uint32_t p_crtc = need_prop(fd, primary, DRM_MODE_OBJECT_PLANE, "CRTC_ID");
  const char *rect[] = {"SRC_X", "SRC_Y", "SRC_W", "SRC_H", "CRTC_X", "CRTC_Y", "CRTC_W", "CRTC_H"};
  uint64_t rect_v[] = {0, 0, (uint64_t)w << 16, (uint64_t)h << 16, 0, 0, w, h};
  uint32_t rect_p[8];
  for (int i = 0; i < 8; i++) rect_p[i] = need_prop(fd, primary, DRM_MODE_OBJECT_PLANE, rect[i]);
  uint32_t p_rot = prop_id(fd, primary, DRM_MODE_OBJECT_PLANE, "rotation", NULL);

  struct req r = {0};
  req_add(&r, crtc, need_prop(fd, crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID"), blob.blob_id);
  req_add(&r, crtc, need_prop(fd, crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE"), 1);
  req_add(&r, conn, need_prop(fd, conn, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID"), crtc);
  req_add(&r, primary, p_fb, fbs[0]);
  req_add(&r, primary, p_crtc, crtc);
  for (int i = 0; i < 8; i++) req_add(&r, primary, rect_p[i], rect_v[i]);
  req_commit(fd, &r, DRM_MODE_ATOMIC_ALLOW_MODESET);

  for (int loop = 0; loop < 2; loop++) {
    const char *props = loop == 0 ? "presenter" : "fb-only";
    int warmup = 10;
    double u0 = 0, s0 = 0, cpu0 = 0, t0 = 0, ioctl_ms = 0;
    for (int i = 0; i < warmup + flips; i++) {
      if (i == warmup) {
        cpu0 = rusage_ms(&u0, &s0);
        t0 = now_ms(CLOCK_MONOTONIC);
        ioctl_ms = 0;
      }
      struct req f = {0};
      req_add(&f, primary, p_fb, fbs[(i + 1) & 1]);
      if (loop == 0) {
        req_add(&f, primary, p_crtc, crtc);
        for (int k = 0; k < 8; k++) req_add(&f, primary, rect_p[k], rect_v[k]);
        if (p_rot) req_add(&f, primary, p_rot, 1);
      }
      double c0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
      req_commit(fd, &f, DRM_MODE_ATOMIC_NONBLOCK | DRM_MODE_PAGE_FLIP_EVENT);
      ioctl_ms += now_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
      read_event(fd);
    }
    double u1, s1, cpu1 = rusage_ms(&u1, &s1), wall = now_ms(CLOCK_MONOTONIC) - t0;
    double load[1] = {0};
    getloadavg(load, 1);
    // the clock the figure is in (bench/clock.mjs): "icount" under the rig's --icount
    const char *clock = getenv("PRIMEBUF_VM_CLOCK") && !strcmp(getenv("PRIMEBUF_VM_CLOCK"), "icount") ? "icount" : "wall";
    printf("{\"bench\":\"flip-floor\",\"case\":\"floor-c-%s\",\"impl\":\"c\",\"props\":\"%s\",\"clock\":\"%s\",\"propsPerFlip\":%u,\"flips\":%d,"
           "\"cpuMsPerFlip\":%.4f,\"userMsPerFlip\":%.4f,\"sysMsPerFlip\":%.4f,\"commitIoctlMsPerFlip\":%.4f,"
           "\"fps\":%.2f,\"mode\":\"%ux%u\",\"loadavg\":%.2f}\n",
           props, props, clock, loop == 0 ? (p_rot ? 11u : 10u) : 1u, flips, (cpu1 - cpu0) / flips, (u1 - u0) / flips, (s1 - s0) / flips,
           ioctl_ms / flips, flips * 1000.0 / wall, w, h, load[0]);
    fflush(stdout);
  }
  close(fd); // the kernel turns the CRTC off and frees the framebuffers, buffers and blob
  return 0;
}
