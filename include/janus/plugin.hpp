// Plugins: shared libraries that add layer types to a program built on Janus,
// above all to the `janus` tool:
//     janus train --config my.json --plugin build/libmylayers.so
// or, in the run config, "plugins": ["build/libmylayers.so"] (relative to the
// config file). examples/layer_plugin is a complete plugin.
//
// Writing a plugin. One source file ends with the entry point:
//
//     #include <janus/plugin.hpp>
//     void register_my_layers(janus::PluginRegistrar& registrar) {
//       registrar.add_layer_type("residual_dense", make_residual_dense);  // a janus::LayerFactory
//     }
//     JANUS_PLUGIN("my_layers", register_my_layers)
//
// and CMake builds it against the installed package:
//
//     find_package(Janus 0.1 REQUIRED)
//     add_library(mylayers MODULE my_layers.cpp)
//     target_link_libraries(mylayers PRIVATE Janus::plugin)
//
// Janus::plugin gives the headers and compile definitions, not the library:
// a plugin runs inside the program that loads it and uses that program's one
// copy of Janus (one layer registry, one set of devices). Linking Janus::janus
// into a plugin instead would give it a second registry that the program
// never reads. The program therefore exports Janus's symbols: the `janus`
// tool links the whole of libjanus and exports its symbols (CMake
// ENABLE_EXPORTS, apps/CMakeLists.txt); a program of one's own does the same:
//
//     set_target_properties(app PROPERTIES ENABLE_EXPORTS ON)
//     target_link_libraries(app PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,Janus::janus>")
//
// The entry point. JANUS_PLUGIN defines the one exported C function
// `janus_plugin_descriptor`, which returns the plugin's PluginDescriptor. The
// loader reads its first two members (the plugin ABI version and the Janus
// version the plugin was compiled against; their place never changes) and
// refuses the plugin unless both equal the program's, and the C++ standard
// library ABI too; only then does it call the plugin's registration
// function. Registration happens there, not in static initialisers: those
// run on dlopen, before any check, and an exception there ends the program.
// Within one Janus version the public headers are taken to be the same: a
// development build that changes them without a version bump needs its
// plugins rebuilt (nothing can detect that).
// A plugin stays loaded until the program exits (its factories are in the
// registry).
#pragma once

#include <string>
#include <vector>

#include "janus/layers.hpp"

// The plugin ABI version: the layout of PluginDescriptor and the contract of
// PluginRegistrar. It changes when they change; a plugin must also be built
// against the very Janus version it is loaded into (the loader compares
// JANUS_VERSION), because the public classes it derives from and calls are
// part of its binary interface.
#define JANUS_PLUGIN_ABI_VERSION 1

// The C++ standard library's binary interface (std::string and std::vector
// cross the boundary): both sides must agree.
#if defined(_LIBCPP_VERSION)
#define JANUS_PLUGIN_STDLIB_ABI "libc++"
#elif defined(__GLIBCXX__) && defined(_GLIBCXX_USE_CXX11_ABI) && _GLIBCXX_USE_CXX11_ABI
#define JANUS_PLUGIN_STDLIB_ABI "libstdc++ (C++11 ABI)"
#elif defined(__GLIBCXX__)
#define JANUS_PLUGIN_STDLIB_ABI "libstdc++ (pre-C++11 ABI)"
#else
#define JANUS_PLUGIN_STDLIB_ABI "unknown C++ library"
#endif

#ifndef JANUS_VERSION
#error "JANUS_VERSION is not defined: build a Janus plugin with the CMake target Janus::plugin (find_package(Janus))"
#endif

namespace janus {

// What a plugin registered: kept by the loader, printed by `janus info`.
struct PluginInfo {
  std::string path;                      // the file, as an absolute, canonical path
  std::string name;                      // the name given to JANUS_PLUGIN
  std::vector<std::string> layer_types;  // in the order registered
};

// Handed to a plugin's registration function: registers the plugin's types
// and records them as the plugin's (for messages and `janus info`). Valid
// only during that call (the loader holds its lock meanwhile): keep no copy.
class PluginRegistrar {
 public:
  // Registers a layer type as register_layer_type does (layers.hpp): make_layer,
  // NeuralNetwork::from_config, load_model and run configs then read it.
  // Throws an Error naming the type when it is built in or registered
  // already (naming the plugin that registered it); load_plugin adds the
  // plugin's file to the message.
  void add_layer_type(const std::string& type, LayerFactory factory);

  const PluginInfo& plugin() const { return *plugin_; }

 private:
  friend const PluginInfo& load_plugin(const std::string& path);
  explicit PluginRegistrar(PluginInfo& plugin) : plugin_(&plugin) {}
  PluginInfo* plugin_;
};

// What `janus_plugin_descriptor` returns. abi_version and janus_version stay
// the first two members in every ABI version, so that any loader can read
// them and say which Janus a plugin was built for.
struct PluginDescriptor {
  int abi_version;              // JANUS_PLUGIN_ABI_VERSION when the plugin was compiled
  const char* janus_version;    // JANUS_VERSION when the plugin was compiled
  const char* stdlib_abi;       // JANUS_PLUGIN_STDLIB_ABI when the plugin was compiled
  const char* name;             // the plugin's name, for messages
  void (*register_types)(PluginRegistrar& registrar);
};

// The name of the entry point the loader looks up with dlsym.
inline constexpr const char* kPluginEntryPoint = "janus_plugin_descriptor";

// Loads the plugin in the shared library `path` (dlopen), checks its
// descriptor and runs its registration function. A file loaded already (the
// same file by canonical path) is not loaded again: its first PluginInfo is
// returned. Throws an Error naming `path` when the file is missing or not a
// loadable library (with the dynamic loader's message, e.g. an undefined
// symbol: the program does not export Janus), when it has no
// janus_plugin_descriptor (not a Janus plugin), when its ABI version, Janus
// version or C++ library ABI differ from this program's (rebuild it), when
// it registers a type that exists already, or when its registration throws.
// Thread-safe.
const PluginInfo& load_plugin(const std::string& path);

// The plugins loaded so far (and registered without error), in load order.
std::vector<PluginInfo> loaded_plugins();

}  // namespace janus

// Defines the plugin's entry point: JANUS_PLUGIN("name", register_function)
// at namespace scope in one source file of the plugin, where
// register_function is a void(janus::PluginRegistrar&).
#define JANUS_PLUGIN(plugin_name, register_function)                                                 \
  extern "C" __attribute__((visibility("default"))) const ::janus::PluginDescriptor*                 \
  janus_plugin_descriptor() {                                                                         \
    static const ::janus::PluginDescriptor descriptor{JANUS_PLUGIN_ABI_VERSION, JANUS_VERSION,       \
                                                      JANUS_PLUGIN_STDLIB_ABI, plugin_name,          \
                                                      &register_function};                           \
    return &descriptor;                                                                               \
  }
