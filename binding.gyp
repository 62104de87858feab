# The primebuf addon: mechanism only (syscalls, ioctls, libwayland glue).
# wayland-scanner runs over every protocol/*.xml listed in `protocols` below; its output lands in
# the build's intermediate dir and is compiled here. Nothing generated is committed.
{
  "variables": {
    "has_gbm%": "<!(pkg-config --exists gbm && echo 1 || echo 0)",
  },
  "targets": [
    {
      "target_name": "primebuf",
      "sources": [
        "native/addon.cc",
        "native/common.cc",
        "native/formats.cc",
        "native/drm.cc",
        "native/dmabuf.cc",
        "native/alloc.cc",
        "native/copy.cc",
        "native/compose.cc",
        "native/shm.cc",
        "native/v4l2.cc",
        "native/egl.cc",
        "native/wayland_server.cc",
        "native/wayland_client.cc",
        "native/input.cc",
        "native/session.cc",
        "<!@(node scripts/gen/protocol-list.mjs)",
      ],
      "actions": [
        {
          # name -> const wl_interface* for every compiled protocol and the core protocol
          "action_name": "protocol-table",
          "inputs": [
            "scripts/gen/protocol-table.mjs",
            "scripts/gen/protocol-xml.mjs",
            "protocol/core/wayland.xml",
            "<!@(node scripts/gen/protocol-list.mjs)",
          ],
          "outputs": ["<(SHARED_INTERMEDIATE_DIR)/protocols/protocol-table.inc"],
          "action": ["node", "scripts/gen/protocol-table.mjs", "<(SHARED_INTERMEDIATE_DIR)/protocols/protocol-table.inc"],
          "message": "protocol table",
        },
      ],
      "rules": [
        {
          "rule_name": "wayland-scanner",
          "extension": "xml",
          "inputs": ["scripts/wayland-scanner.sh"],
          "outputs": [
            "<(SHARED_INTERMEDIATE_DIR)/protocols/<(RULE_INPUT_ROOT)-protocol.c",
            "<(SHARED_INTERMEDIATE_DIR)/protocols/<(RULE_INPUT_ROOT)-server-protocol.h",
            "<(SHARED_INTERMEDIATE_DIR)/protocols/<(RULE_INPUT_ROOT)-client-protocol.h",
          ],
          "action": ["sh", "scripts/wayland-scanner.sh", "<(RULE_INPUT_PATH)", "<(SHARED_INTERMEDIATE_DIR)/protocols"],
          "message": "wayland-scanner <(RULE_INPUT_NAME)",
          "process_outputs_as_sources": 1,
        },
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native",
        "native/vendor",
        "<(SHARED_INTERMEDIATE_DIR)/protocols",
      ],
      "defines": ["NAPI_VERSION=9", "NAPI_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags": ["<!@(pkg-config --cflags libdrm pixman-1 wayland-server wayland-client libinput xkbcommon libudev libseat)", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=gnu++20", "-fexceptions"],
      "libraries": ["<!@(pkg-config --libs libdrm pixman-1 wayland-server wayland-client libinput xkbcommon libudev libseat)", "-ldl"],
      "conditions": [
        ["has_gbm==1", {
          "defines": ["PRIMEBUF_HAVE_GBM=1"],
          "cflags": ["<!@(pkg-config --cflags gbm)"],
          "libraries": ["<!@(pkg-config --libs gbm)"],
        }],
      ],
    },
  ],
}
