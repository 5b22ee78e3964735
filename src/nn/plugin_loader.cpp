// The plugin loader of janus/plugin.hpp: dlopen, the descriptor's checks,
// and the registration of a plugin's layer types.
#include <cxxabi.h>
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>

#include "janus/error.hpp"
#include "janus/plugin.hpp"

namespace janus {

namespace {

namespace fs = std::filesystem;

// Every plugin loaded, in load order. A std::list keeps the PluginInfo
// references load_plugin returns valid as more plugins load.
struct PluginTable {
  std::mutex mutex;
  std::list<PluginInfo> plugins;
  std::map<std::string, std::string> failed;  // canonical path -> the error its registration gave
};
PluginTable& table() {
  static PluginTable t;
  return t;
}

// The plugin that registered `type`, if a plugin did. Called with the
// table's mutex held (by load_plugin, through the registrar).
const PluginInfo* plugin_owning(const std::string& type) {
  for (const PluginInfo& p : table().plugins)
    for (const std::string& t : p.layer_types)
      if (t == type) return &p;
  return nullptr;
}

// The dynamic loader's message, with a mangled C++ symbol in it demangled
// ("undefined symbol: _ZN5janus6Conv2DC1E..." -> "janus::Conv2D::Conv2D(...)")
// and a hint at the usual cause.
std::string explain_dlopen_error(const char* message) {
  std::string text = message ? message : "unknown dynamic loader error";
  const std::string marker = "undefined symbol: ";
  const size_t at = text.find(marker);
  if (at == std::string::npos) return text;
  const size_t begin = at + marker.size();
  const size_t end = text.find_first_of(" ,\t\n", begin);
  const std::string symbol = text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(symbol.c_str(), nullptr, nullptr, &status),
                                                   std::free);
  if (status == 0 && demangled) text += " (" + std::string(demangled.get()) + ")";
  return text +
         "; the program must export Janus's symbols (the janus tool does; a program of one's own links "
         "Janus::janus whole with ENABLE_EXPORTS, janus/plugin.hpp), and the plugin must be built against the "
         "same Janus";
}

// Refuses a descriptor this program cannot use. Only its first two members
// are read before the ABI version is known to match.
void check_descriptor(const PluginDescriptor* d, const std::string& path) {
  JANUS_CHECK(d != nullptr, "plugin ", path, ": ", kPluginEntryPoint, "() returned no descriptor");
  const std::string built_for =
      "plugin ABI " + std::to_string(d->abi_version) +
      (d->janus_version ? std::string(", Janus ") + d->janus_version : std::string());
  const std::string here = "plugin ABI " + std::to_string(JANUS_PLUGIN_ABI_VERSION) + ", Janus " + JANUS_VERSION;
  const std::string rebuild = "; rebuild the plugin against this Janus (find_package(Janus), Janus::plugin)";
  JANUS_CHECK(d->abi_version == JANUS_PLUGIN_ABI_VERSION, "plugin ", path, ": built for ", built_for,
              ", but this program has ", here, rebuild);
  JANUS_CHECK(d->janus_version && std::strcmp(d->janus_version, JANUS_VERSION) == 0, "plugin ", path,
              ": built for ", built_for, ", but this program has ", here, rebuild);
  JANUS_CHECK(d->stdlib_abi && std::strcmp(d->stdlib_abi, JANUS_PLUGIN_STDLIB_ABI) == 0, "plugin ", path,
              ": built with the C++ library ABI '", d->stdlib_abi ? d->stdlib_abi : "(none)",
              "', but this program uses '", JANUS_PLUGIN_STDLIB_ABI, "'", rebuild);
  JANUS_CHECK(d->name && *d->name, "plugin ", path, ": its descriptor has no name");
  JANUS_CHECK(d->register_types != nullptr, "plugin ", path, ": its descriptor has no registration function");
}

}  // namespace

// Errors here name the type; load_plugin prefixes the plugin's file.
void PluginRegistrar::add_layer_type(const std::string& type, LayerFactory factory) {
  if (is_registered_layer_type(type)) {
    const PluginInfo* owner = plugin_owning(type);
    throw Error("layer type '" + type + "' is registered already by " +
                (owner == plugin_ ? std::string("this plugin")
                 : owner          ? "plugin " + owner->path + " (" + owner->name + ")"
                                  : std::string("the program itself")) +
                "; load only one library that defines it");
  }
  register_layer_type(type, std::move(factory));  // refuses a built-in type's name
  plugin_->layer_types.push_back(type);
}

const PluginInfo& load_plugin(const std::string& path) {
  JANUS_CHECK(!path.empty(), "plugin: empty path (expected a shared library, e.g. build/libmylayers.so)");
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  JANUS_CHECK(fs::exists(status), "plugin ", path, ": no such file");
  JANUS_CHECK(!fs::is_directory(status), "plugin ", path, ": is a directory, not a shared library");
  const std::string canonical = fs::canonical(path, ec).string();
  JANUS_CHECK(!ec, "plugin ", path, ": cannot resolve the path: ", ec.message());

  PluginTable& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  // A plugin whose registration failed stays loaded but half registered:
  // asking for it again repeats its error rather than pass it as loaded.
  if (auto failure = t.failed.find(canonical); failure != t.failed.end()) throw Error(failure->second);
  for (const PluginInfo& p : t.plugins)
    if (p.path == canonical) return p;

  // RTLD_NOW: a symbol the program does not provide is reported here, with
  // the file, rather than as a crash at the first call. RTLD_LOCAL: one
  // plugin's symbols do not resolve another's. A plugin is never unloaded
  // (not even after an error below): its code may be in the registry or
  // have run static initialisers, and the program's exit releases it.
  dlerror();
  void* handle = dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) throw Error("plugin " + path + ": cannot load: " + explain_dlopen_error(dlerror()));
  using EntryPoint = const PluginDescriptor* (*)();
  auto entry = reinterpret_cast<EntryPoint>(dlsym(handle, kPluginEntryPoint));
  JANUS_CHECK(entry != nullptr, "plugin ", path, ": no entry point '", kPluginEntryPoint,
              "': not a Janus plugin (a plugin defines it with JANUS_PLUGIN(name, register_function), "
              "janus/plugin.hpp)");
  const PluginDescriptor* descriptor = entry();
  check_descriptor(descriptor, path);

  t.plugins.push_back(PluginInfo{canonical, descriptor->name, {}});
  PluginInfo& info = t.plugins.back();
  PluginRegistrar registrar(info);
  std::string failure;
  try {
    descriptor->register_types(registrar);
    if (info.layer_types.empty())
      failure = "registered no layer type (its registration function calls registrar.add_layer_type)";
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "its registration function threw an exception that is not a std::exception";
  }
  if (failure.empty()) return info;
  failure = "plugin " + path + " (" + info.name + "): " + failure;
  // The types registered before the failure stay registered (the registry
  // has no removal) and recorded, so that a later clash still names this file.
  t.failed.emplace(canonical, failure);
  throw Error(failure);
}

std::vector<PluginInfo> loaded_plugins() {
  PluginTable& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  std::vector<PluginInfo> loaded;
  for (const PluginInfo& p : t.plugins)
    if (!t.failed.count(p.path)) loaded.push_back(p);
  return loaded;
}

}  // namespace janus
