// Top-level layer names (layer_name.hpp).
#include "nn/layer_name.hpp"

#include "janus/error.hpp"

namespace janus::nn_detail {

void check_layer_name(const std::string& name, const std::string& where) {
  JANUS_CHECK(name.find('.') == std::string::npos, where, ": the name '", name,
              "' contains '.', which separates a layer from its parameter in parameter names ('", name,
              ".W'); use '_' instead");
}

}  // namespace janus::nn_detail
