// CompositeLayer: children, hierarchical names and per-child seeds.
#include "janus/composite_layer.hpp"

#include "janus/counter_rng.hpp"
#include "janus/error.hpp"

namespace janus {

void CompositeLayer::adopt(std::unique_ptr<Layer> layer) {
  JANUS_CHECK(layer != nullptr, where(), ": add_child got no layer");
  const std::string& child = layer->name();
  JANUS_CHECK(!child.empty() && child.find('.') == std::string::npos, where(), ": child name '", child,
              "' must be non-empty and without '.' (it becomes part of parameter names)");
  for (const auto& c : children_)
    JANUS_CHECK(c->name() != child, where(), ": two children named '", child, "' (their parameters would both be '",
                name(), ".", child, ".*'): give each child its own name");
  children_.push_back(std::move(layer));
}

std::vector<Parameter*> CompositeLayer::parameters() {
  std::vector<Parameter*> out;
  for (auto& c : children_)
    for (Parameter* p : c->parameters()) out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, Parameter*>> CompositeLayer::named_parameters() {
  std::vector<std::pair<std::string, Parameter*>> out;
  for (auto& c : children_)
    for (auto& [n, p] : c->named_parameters()) out.emplace_back(c->name() + "." + n, p);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> CompositeLayer::buffers() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (auto& c : children_)
    for (auto& [n, t] : c->buffers()) out.emplace_back(c->name() + "." + n, t);
  return out;
}

void CompositeLayer::set_step(uint64_t step) {
  for (auto& c : children_) c->set_step(step);
}

void CompositeLayer::create_parameters(const Shape& input_shape, Device& device, DType dtype) {
  // Distinct streams per child, derived from this layer's seed (itself
  // distinct per model node), so no two inner layers draw the same weights.
  for (size_t i = 0; i < children_.size(); ++i) children_[i]->set_seed(splitmix64(seed_ ^ splitmix64(i + 1)));
  build_children(input_shape, device, dtype);
}

}  // namespace janus
