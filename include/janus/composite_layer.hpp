// CompositeLayer: a user-written layer made of other layers (a residual
// block, a bottleneck), as libtorch's Module with registered submodules.
//
// The base class owns the children and does the bookkeeping that is easy to
// get wrong by hand:
//   - names: a child's parameters and buffers are named after the child,
//     "conv1.W", and the model prefixes the composite's own name:
//     "res1.conv1.W" (checkpoint keys, optimizer state). Two children with
//     one name are refused when added.
//   - seeds: before the children are built, each gets its own seed drawn from
//     the composite's (splitmix64 of the seed and the child's index), so two
//     inner convolutions of one shape start from different weights.
//   - steps: set_step reaches every child (Dropout's masks).
// A subclass adds its children in its constructor (add_child), builds them
// for the input shape in build_children, and writes output_shape, forward,
// backward and config (for load_model, register the type: layers.hpp,
// register_layer_type). examples/residual_cnn and tests/test_cpp_api.cpp
// hold a residual block written this way.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "janus/layer.hpp"

namespace janus {

class CompositeLayer : public Layer {
 public:
  using Layer::Layer;

  // Every child's parameters, in the order the children were added.
  std::vector<Parameter*> parameters() override;
  // "<child name>.<parameter name>", recursively for nested composites.
  std::vector<std::pair<std::string, Parameter*>> named_parameters() override;
  // "<child name>.<buffer name>" (BatchNorm running statistics).
  std::vector<std::pair<std::string, Tensor*>> buffers() override;
  void set_step(uint64_t step) override;

  size_t child_count() const { return children_.size(); }
  Layer& child(size_t i) { return *children_.at(i); }

 protected:
  // Takes ownership of `layer` and returns it. Throws an Error naming this
  // layer when a child of the same name exists (their parameters would share
  // names) or the name is empty or contains '.'.
  template <class L>
  L& add_child(std::unique_ptr<L> layer) {
    L& ref = *layer;
    adopt(std::move(layer));
    return ref;
  }
  // Seeds the children, then calls build_children.
  void create_parameters(const Shape& input_shape, Device& device, DType dtype) final;
  // Builds every child for the shape it will see (child.build(shape, ...)).
  virtual void build_children(const Shape& input_shape, Device& device, DType dtype) = 0;

 private:
  void adopt(std::unique_ptr<Layer> layer);
  std::vector<std::unique_ptr<Layer>> children_;
};

}  // namespace janus
