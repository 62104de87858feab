// Shared by wayland_server.cc and wayland_client.cc: the libuv pump and JS callback glue, the
// interface table (every interface of
// protocol/*.xml plus the core protocol, generated into protocol-table.inc by the build) and
// wl_message signature parsing, and the wl_argument <-> JS value conversion both bridges use.
// Mechanism only.
#pragma once

#include <napi.h>
#include <uv.h>
#include <wayland-util.h>

#include <cstdint>

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

// Calls a JS callback from inside libwayland, where a C++ exception must not unwind: a throw
// becomes Node's uncaught exception instead.
inline void CallJs(Napi::Env env, Napi::FunctionReference& fn, const std::initializer_list<napi_value>& args) {
  Napi::HandleScope scope(env);
  try {
    fn.Call(args);
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  }
}

// The function `name` of a bridge constructor's callbacks object, held; a TypeError naming the
// class when it is missing.
inline Napi::FunctionReference CallbackRef(Napi::Env env, const Napi::Object& cb, const char* cls, const char* name) {
  Napi::Value v = cb.Get(name);
  if (!v.IsFunction()) throw Napi::TypeError::New(env, std::string(cls) + ": callback " + name + " missing");
  return Napi::Persistent(v.As<Napi::Function>());
}

// Drives a libwayland fd from Node's loop: polls fd for readable and adds a prepare hook that
// does not keep the loop alive, both with data = owner. Returns 0, or uv_poll_init's negative
// error with nothing left allocated.
inline int StartUvPump(uv_loop_t* loop, int fd, void* owner, uv_poll_cb onPoll, uv_prepare_cb onPrepare,
                       uv_poll_t*& poll, uv_prepare_t*& prepare) {
  poll = new uv_poll_t;
  poll->data = owner;
  int rc = uv_poll_init(loop, poll, fd);
  if (rc != 0) {
    delete poll;
    poll = nullptr;
    return rc;
  }
  uv_poll_start(poll, UV_READABLE, onPoll);
  prepare = new uv_prepare_t;
  prepare->data = owner;
  uv_prepare_init(loop, prepare);
  uv_prepare_start(prepare, onPrepare);
  uv_unref(reinterpret_cast<uv_handle_t*>(prepare));
  return 0;
}

// Closes both handles of a pump (freed once libuv is done with them).
inline void CloseUvPump(uv_poll_t*& poll, uv_prepare_t*& prepare) {
  uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  uv_close(reinterpret_cast<uv_handle_t*>(prepare), [](uv_handle_t* h) { delete reinterpret_cast<uv_prepare_t*>(h); });
  poll = nullptr;
  prepare = nullptr;
}

// Decodes a message's wl_arguments into a JS array: numbers, strings (or null), fixed as
// doubles, arrays as Buffer copies, fds as numbers (the receiver owns them at once). Objects
// and new_ids are the bridge's business: object(ptr) is called for a non-null 'o', newId(i)
// for every 'n'; each returns the JS value, or an empty Napi::Value to stop decoding (the
// caller then drops the message and gets an empty array back).
template <typename ObjectFn, typename NewIdFn>
Napi::Array ArgsToJs(Napi::Env env, const Signature& sig, const wl_argument* args, ObjectFn object, NewIdFn newId) {
  Napi::Array out = Napi::Array::New(env, sig.args.size());
  for (size_t i = 0; i < sig.args.size(); i++) {
    switch (sig.args[i].type) {
      case 'i':
        out[i] = Napi::Number::New(env, args[i].i);
        break;
      case 'u':
        out[i] = Napi::Number::New(env, args[i].u);
        break;
      case 'f':
        out[i] = Napi::Number::New(env, wl_fixed_to_double(args[i].f));
        break;
      case 's':
        out[i] = args[i].s ? Napi::String::New(env, args[i].s) : env.Null();
        break;
      case 'o':
        out[i] = args[i].o ? object(args[i].o) : env.Null();
        break;
      case 'n': {
        Napi::Value v = newId(i);
        if (v.IsEmpty()) return Napi::Array();
        out[i] = v;
        break;
      }
      case 'a':
        out[i] = args[i].a ? Napi::Buffer<uint8_t>::Copy(env, static_cast<uint8_t*>(args[i].a->data), args[i].a->size)
                           : env.Null();
        break;
      case 'h':
        out[i] = Napi::Number::New(env, args[i].h);  // the receiver takes ownership at once
        break;
      default:
        out[i] = env.Undefined();
        break;
    }
  }
  return out;
}

// wl_arguments built from JS values, with the storage they point into.
struct WlArgs {
  std::vector<wl_argument> args;
  std::vector<std::string> strings;
  std::vector<wl_array> arrays;
};

// Encodes JS values (as ArgsToJs decodes them) into wl_arguments for message msg of iface.
// Null/undefined strings, objects and new_ids become NULL; with checkNullable a NULL for an
// argument without '?' throws a TypeError. object(value, type, where) resolves a non-null 'o'
// or 'n' value to the wl_object to send. fds are sent as given (libwayland sends a duplicate).
template <typename ObjectFn>
WlArgs JsToArgs(Napi::Env env, const Napi::Array& in, const wl_interface* iface, const wl_message* msg,
                const Signature& sig, bool checkNullable, ObjectFn object) {
  size_t n = sig.args.size();
  WlArgs out{std::vector<wl_argument>(n), std::vector<std::string>(n), std::vector<wl_array>(n)};
  for (size_t i = 0; i < n; i++) {
    Napi::Value v = in[i];
    const ArgSpec& a = sig.args[i];
    std::string where = std::string(iface->name) + "." + msg->name + " argument " + std::to_string(i);
    bool isNull = v.IsNull() || v.IsUndefined();
    if (isNull && checkNullable && !a.nullable && (a.type == 's' || a.type == 'o' || a.type == 'n'))
      throw Napi::TypeError::New(env, where + " must not be null");
    switch (a.type) {
      case 'i':
        out.args[i].i = v.As<Napi::Number>().Int32Value();
        break;
      case 'u':
        out.args[i].u = v.As<Napi::Number>().Uint32Value();
        break;
      case 'f':
        out.args[i].f = wl_fixed_from_double(v.As<Napi::Number>().DoubleValue());
        break;
      case 's':
        if (isNull) {
          out.args[i].s = nullptr;
        } else {
          out.strings[i] = v.As<Napi::String>().Utf8Value();
          out.args[i].s = out.strings[i].c_str();
        }
        break;
      case 'o':
      case 'n':
        out.args[i].o = isNull ? nullptr : object(v, a.type, where);
        break;
      case 'a': {
        if (!v.IsTypedArray()) throw Napi::TypeError::New(env, where + " must be a Uint8Array");
        Napi::TypedArray ta = v.As<Napi::TypedArray>();
        out.arrays[i].data = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
        out.arrays[i].size = ta.ByteLength();
        out.arrays[i].alloc = ta.ByteLength();
        out.args[i].a = &out.arrays[i];
        break;
      }
      case 'h':
        out.args[i].h = v.As<Napi::Number>().Int32Value();
        break;
      default:
        throw Napi::Error::New(env, where + ": unknown signature type");
    }
  }
  return out;
}

}  // namespace primebuf
