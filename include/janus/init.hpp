// Weight initialisers (SPEC §2): xavier_uniform (default), xavier_normal,
// he_uniform, he_normal, uniform, normal, zeros. Values are drawn on the host
// from a seeded Rng, so a seed gives identical weights on every device.
#pragma once

#include <string>

#include "janus/device.hpp"
#include "janus/random.hpp"
#include "janus/tensor.hpp"

namespace janus {

enum class Init { XavierUniform, XavierNormal, HeUniform, HeNormal, Uniform, Normal, Zeros };

Init parse_init(const std::string& name, const std::string& owner);
const char* init_name(Init init);

// fan_in / fan_out as in Glorot & Bengio: for a dense W (n_in, n_out) they are
// n_in and n_out; for a conv W (KH, KW, C, F) they are KH*KW*C and KH*KW*F.
//   xavier_uniform U(-a, a), a = sqrt(6 / (fan_in + fan_out))
//   xavier_normal  N(0, s),  s = sqrt(2 / (fan_in + fan_out))
//   he_uniform     U(-a, a), a = sqrt(6 / fan_in)
//   he_normal      N(0, s),  s = sqrt(2 / fan_in)
//   uniform        U(-0.05, 0.05)      normal N(0, 0.05)   (Keras' defaults)
Tensor initialise(Init init, const Shape& shape, int64_t fan_in, int64_t fan_out, Rng& rng,
                  Device& device, DType dtype);

}  // namespace janus
