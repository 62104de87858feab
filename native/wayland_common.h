// Shared by wayland_server.cc and wayland_client.cc: the interface table (every interface of
// protocol/*.xml plus the core protocol, generated into protocol-table.inc by the build) and
// wl_message signature parsing. Mechanism only.
#pragma once

#include <wayland-util.h>

#include <cstring>
#include <string>
#include <vector>

#include "protocol-table.inc"

namespace primebuf {

// The compiled wl_interface for a protocol interface name, or nullptr.
inline const wl_interface* FindInterface(const std::string& name) {
  for (const auto& e : kProtocolInterfaces)
    if (name == e.name) return e.iface;
  return nullptr;
}

// Every known interface name (for listing in errors and tests).
inline std::vector<std::string> InterfaceNames() {
  std::vector<std::string> out;
  for (const auto& e : kProtocolInterfaces) out.emplace_back(e.name);
  return out;
}

struct ArgSpec {
  char type;      // i u f s o n a h
  bool nullable;  // '?' prefix
};

struct Signature {
  int since = 1;
  std::vector<ArgSpec> args;
};

// Parses a wl_message signature: optional leading version digits, then per argument an
// optional '?' and one type letter.
inline Signature ParseSignature(const char* sig) {
  Signature out;
  int since = 0;
  bool nullable = false;
  for (const char* p = sig; *p; p++) {
    if (*p >= '0' && *p <= '9') {
      since = since * 10 + (*p - '0');
    } else if (*p == '?') {
      nullable = true;
    } else {
      out.args.push_back({*p, nullable});
      nullable = false;
    }
  }
  if (since > 0) out.since = since;
  return out;
}

}  // namespace primebuf
