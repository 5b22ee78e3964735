// Kernels compiled once per vector width, chosen when the program loads.
//
// Janus builds for baseline x86-64 so that one binary runs on any x86-64
// machine; its own element-wise and reduction loops would then run on SSE2,
// two doubles or four floats wide. A function marked JANUS_VECTOR_CLONES is
// compiled three times (AVX-512, AVX2, baseline) and the dynamic loader picks
// the widest one the CPU has (GCC / Clang target_clones, an ifunc). On this
// project's machines that is 4x the width of the baseline build.
//
// Rules for a cloned kernel:
// - It is a plain function: clang cannot clone function templates, so a
//   kernel written as a template gets one cloned overload per element type,
//   each calling the template body, which is JANUS_ALWAYS_INLINE so that it
//   is compiled inside every clone at that clone's width (helpers it calls,
//   too).
// - The files that hold cloned kernels are compiled with -ffp-contract=off
//   (CMakeLists.txt): no clone fuses a multiply and an add the others do not,
//   so every clone rounds exactly as the baseline does. Vector lanes are
//   independent elements (channels, positions), so the width changes no
//   order of operations either: all clones give bit-identical results.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(JANUS_NO_VECTOR_CLONES)
#define JANUS_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define JANUS_VECTOR_CLONES
#endif

#define JANUS_ALWAYS_INLINE inline __attribute__((always_inline))
