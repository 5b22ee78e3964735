# `cmake --install BUILD --prefix P` installs what a downstream C++ project
# needs to build against Janus:
#   P/include/janus/*.hpp                 the public headers
#   P/lib/libjanus.a                      the library (static by default)
#   P/lib/cmake/Janus/JanusConfig.cmake   the CMake package: find_package(Janus)
#     + JanusConfigVersion.cmake (same major version is compatible)
#     + JanusFindCUDAToolkit.cmake (CUDA builds: finding the toolkit on CMake 3.25.0-3.25.1)
#     + JanusTargets.cmake (the imported targets Janus::janus, Janus::plugin
#       and Janus::cli, the janus tool)
#     + JanusNlohmannJsonTargets.cmake (Janus::nlohmann_json, the optional
#       component nlohmann_json: Janus::janus plus nlohmann/json, for code
#       that includes <janus/nlohmann_json.hpp>)
#   P/bin/janus                           the janus tool (apps/CMakeLists.txt)
# JanusConfig.cmake finds Janus's own dependencies (find_dependency), so a
# downstream project writes only
#     find_package(Janus 0.1 REQUIRED)
#     target_link_libraries(app PRIVATE Janus::janus)
# (examples/residual_cnn is such a project; README, "C++ API"). A plugin
# (janus/plugin.hpp, examples/layer_plugin) links Janus::plugin instead.
include(CMakePackageConfigHelpers)

set(JANUS_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/Janus CACHE STRING
    "Where the Janus CMake package goes, relative to the install prefix")

set_target_properties(janus PROPERTIES EXPORT_NAME janus)
# The public include folders set as plain paths (cmake/JanusCuda.cmake: the
# simulator's header stubs, the CCCL links) serve the build tree only: the
# installed public headers include none of them. Marked so here, in one
# place, they stay out of the exported target.
foreach(property INTERFACE_INCLUDE_DIRECTORIES INTERFACE_SYSTEM_INCLUDE_DIRECTORIES)
  get_target_property(dirs janus ${property})
  if(dirs)
    set(build_only "")
    foreach(dir IN LISTS dirs)
      if(dir MATCHES "^\\$<")
        list(APPEND build_only "${dir}")
      else()
        list(APPEND build_only "$<BUILD_INTERFACE:${dir}>")
      endif()
    endforeach()
    set_target_properties(janus PROPERTIES ${property} "${build_only}")
  endif()
endforeach()

# Janus::plugin: what a plugin (janus/plugin.hpp) compiles with, the public
# headers and Janus's public compile definitions (JANUS_VERSION...), without
# the library: a plugin calls the copy of Janus in the program that loads it
# (one layer registry), never a second copy of its own. Copied from the
# library's final interface (JanusCuda.cmake has added to it by now).
add_library(janus_plugin INTERFACE)
add_library(Janus::plugin ALIAS janus_plugin)
set_target_properties(janus_plugin PROPERTIES EXPORT_NAME plugin)
foreach(property INTERFACE_INCLUDE_DIRECTORIES INTERFACE_SYSTEM_INCLUDE_DIRECTORIES INTERFACE_COMPILE_DEFINITIONS)
  get_target_property(values janus ${property})
  if(values)
    set_target_properties(janus_plugin PROPERTIES ${property} "${values}")
  endif()
endforeach()
# Configs cross the API as janus::Json, so a plugin needs no nlohmann/json
# (one that includes <janus/nlohmann_json.hpp> adds nlohmann_json itself).
target_link_libraries(janus_plugin INTERFACE Threads::Threads)
target_compile_features(janus_plugin INTERFACE cxx_std_17)

install(TARGETS janus janus_plugin EXPORT JanusTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/janus DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp")
install(EXPORT JanusTargets NAMESPACE Janus:: DESTINATION ${JANUS_INSTALL_CMAKEDIR})
# A file of its own, read only when the component is asked for: a project
# that does not use nlohmann/json does not need it installed.
set_target_properties(janus_nlohmann_json PROPERTIES EXPORT_NAME nlohmann_json)
install(TARGETS janus_nlohmann_json EXPORT JanusNlohmannJsonTargets)
install(EXPORT JanusNlohmannJsonTargets NAMESPACE Janus:: DESTINATION ${JANUS_INSTALL_CMAKEDIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/JanusConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/JanusConfig.cmake
                              INSTALL_DESTINATION ${JANUS_INSTALL_CMAKEDIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/JanusConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/JanusConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/JanusConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/JanusFindCUDAToolkit.cmake
        DESTINATION ${JANUS_INSTALL_CMAKEDIR})
