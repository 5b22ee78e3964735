// Top-level layer names (internal). A parameter's name is "<layer>.<parameter>"
// ("conv1.W": checkpoints, per-parameter options, optimizer state), so '.' in a
// layer's own name would make such names ambiguous ("a.b.W": layer "a" with a
// child "b", or layer "a.b"?). Config loading (make_layer), GraphBuilder and
// NeuralNetwork refuse it; CompositeLayer checks its children's names itself.
#pragma once

#include <string>

namespace janus::nn_detail {

// Throws janus::Error "<where>: the name '<name>' contains '.', ..." when it does.
void check_layer_name(const std::string& name, const std::string& where);

}  // namespace janus::nn_detail
