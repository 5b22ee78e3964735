// oneDNN convolution primitives for NHWC activations and HWIO weights (see
// onednn_conv.hpp for the design).
#include "cpu/onednn_conv.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <map>
#include <new>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

#include "cpu/fast_layout.hpp"
#include "cpu/scoped_resources.hpp"
#include "janus/error.hpp"

namespace janus::onednn {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Pass = OneDnnConv::Pass;
using fast::GrowBuffer;
using fast::ScopedOmpThreads;

const char* pass_name(Pass pass) {
  switch (pass) {
    case Pass::Forward: return "forward";
    case Pass::BackwardData: return "backward-data";
    case Pass::BackwardWeights: return "backward-weights";
  }
  return "?";
}

// oneDNN's descriptors of one geometry. oneDNN orders dimensions logically
// (N, C, H, W for activations, O, I, H, W for weights, G, O, I, H, W for
// grouped weights) and takes the physical layout from the format tag.
// Grouped: Janus's (KH, KW, C/G, F) weights, with F = (group, filter of the
// group), are oneDNN's hwigo (physical order H, W, I, G, O); oneDNN then runs
// its grouped kernels (its depthwise ones when groups == C).
struct Shapes {
  memory::desc x, y, w_user, w_prim, bias;
  memory::dims strides, pad_l, pad_r;
};

Shapes shapes_of(const ConvGeometry& g, WeightsLayout layout, bool bias) {
  const auto f32 = memory::data_type::f32;
  Shapes s;
  s.x = memory::desc({g.N, g.C, g.H, g.W}, f32, Tag::nhwc);
  s.y = memory::desc({g.N, g.F, g.OH, g.OW}, f32, Tag::nhwc);
  s.w_user = g.groups == 1
                 ? memory::desc({g.F, g.C, g.KH, g.KW}, f32, Tag::hwio)
                 : memory::desc({g.groups, g.group_filters(), g.group_channels(), g.KH, g.KW}, f32, Tag::hwigo);
  s.w_prim = layout == WeightsLayout::Any ? memory::desc(s.w_user.dims(), f32, Tag::any) : s.w_user;
  if (bias) s.bias = memory::desc({g.F}, f32, Tag::x);
  s.strides = {g.stride_h, g.stride_w};
  s.pad_l = {g.pad_h, g.pad_w};
  // Janus pads symmetrically, but the last window may stop short of the
  // bottom / right padding (OH rounds down). oneDNN wants the padding that is
  // actually read: the smallest non-negative value consistent with OH.
  s.pad_r = {std::max(0, (g.OH - 1) * g.stride_h + g.KH - g.H - g.pad_h),
             std::max(0, (g.OW - 1) * g.stride_w + g.KW - g.W - g.pad_w)};
  return s;
}

// An activation operand of a Winograd pass, which needs oneDNN's blocked
// layout (nChw16c): the blocked copy lives in a grow-only buffer (`slot`) and
// a reorder converts between it and the NHWC tensor, before the convolution
// for an input, after it for an output.
// When the blocked layout is nChw16c (what the Winograd kernels pick), the
// conversion is Janus's own (fast_layout.hpp: whole cache lines, exact);
// otherwise oneDNN's reorder primitive does it.
struct Staged {
  bool input = true;
  int slot = 0;
  size_t bytes = 0;
  memory user, blocked;
  bool own = false;           // nChw16c: fast_layout's conversions
  int64_t N = 0, HW = 0, C = 0;  // the tensor, for them
  dnnl::primitive reorder;    // otherwise
  std::unordered_map<int, memory> args;
};

// One pass for one geometry: the convolution primitive, the reorder between
// HWIO and the primitive's weights layout (when they differ), and the memory
// objects both are bound to. Only data pointers change from call to call.
struct Entry {
  bool usable = false;  // false: the pass declines this geometry
  std::string impl;     // oneDNN's implementation name
  dnnl::primitive conv;
  std::unordered_map<int, memory> conv_args;
  bool reorders = false;
  dnnl::primitive reorder;
  std::unordered_map<int, memory> reorder_args;
  // x / dx, y / dy, bias, weights (or their gradient) in HWIO and in the
  // primitive's layout (the same object when no reorder is needed), scratch.
  memory x, y, bias, w_user, w_prim, scratch, reorder_scratch;
  size_t scratch_bytes = 0;  // enough for the convolution and the reorders
  size_t w_prim_bytes = 0;
  // Winograd only: the activation operands in oneDNN's blocked layout, each
  // with its reorder from (inputs) or to (outputs) the NHWC tensor.
  std::vector<Staged> staged;
};

// (pass, input type, bias, relu, N, H, W, C, KH, KW, F, strides, paddings,
// groups): OH and OW follow. relu (the forward's post-op) is 0 for the
// backward passes.
using Key = std::array<int, 16>;

Key key_of(Pass pass, InputType in, const ConvGeometry& g, bool bias, bool relu) {
  return {static_cast<int>(pass), static_cast<int>(in), bias ? 1 : 0, relu ? 1 : 0, g.N, g.H, g.W,
          g.C, g.KH, g.KW, g.F, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.groups};
}

// d with bf16 elements and the layout left to the primitive (format any).
memory::desc any_bf16(const memory::desc& d) {
  return memory::desc(d.dims(), memory::data_type::bf16, Tag::any);
}

bool is_reference(const std::string& impl) { return impl.rfind("ref", 0) == 0; }

// ConvAlgorithm::Auto's rule (onednn_conv.hpp): Winograd for 3x3 stride-1
// undilated layers of at least 32 input and output channels on maps of at
// most 16x16.
bool auto_winograd(const ConvGeometry& g) {
  return g.KH == 3 && g.KW == 3 && g.stride_h == 1 && g.stride_w == 1 && g.C >= 32 &&
         g.F >= 32 && int64_t{g.OH} * g.OW <= 256;
}

}  // namespace

bool has_native_bf16() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);  // AMX includes it
  return (isa & bf16) == bf16;
}

bool uses_winograd(ConvAlgorithm algorithm, const ConvGeometry& g) {
  if (g.groups > 1) return false;  // oneDNN's Winograd kernels take no groups
  switch (algorithm) {
    case ConvAlgorithm::Direct: return false;
    case ConvAlgorithm::Winograd: return true;
    case ConvAlgorithm::Auto: return auto_winograd(g);
  }
  return false;
}

struct OneDnnConv::Impl {
  WeightsLayout layout;
  ConvAlgorithm algorithm;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<Key, std::unique_ptr<Entry>> entries;
  GrowBuffer scratch;    // the primitives' scratchpads (one runs at a time)
  GrowBuffer w_reorder;  // weights in the primitive's layout
  std::array<GrowBuffer, 2> staged;  // blocked activations of Winograd passes

  Impl(WeightsLayout l, ConvAlgorithm a) : layout(l), algorithm(a) {}

  // The cached entry, created on first use.
  Entry& entry(Pass pass, InputType in, const ConvGeometry& g, bool bias, bool relu = false) {
    std::unique_ptr<Entry>& e = entries[key_of(pass, in, g, bias, relu)];
    if (!e) e = create(pass, in, g, bias, relu);
    return *e;
  }

  std::unique_ptr<Entry> create(Pass pass, InputType in, const ConvGeometry& g, bool bias,
                                bool relu) const {
    if (in == InputType::BF16) {
      // Direct kernels only; none at all without the CPU's bf16 instructions.
      if (!has_native_bf16()) return std::make_unique<Entry>();
      return create_with(pass, g, bias, relu, dnnl::algorithm::convolution_direct, true);
    }
    if (uses_winograd(algorithm, g)) {
      // Winograd where oneDNN has it for this geometry, else direct.
      auto e = create_with(pass, g, bias, relu, dnnl::algorithm::convolution_winograd);
      if (e->usable) return e;
    }
    return create_with(pass, g, bias, relu, dnnl::algorithm::convolution_direct);
  }

  std::unique_ptr<Entry> create_with(Pass pass, const ConvGeometry& g, bool bias, bool relu,
                                     dnnl::algorithm alg, bool bf16 = false) const {
    auto e = std::make_unique<Entry>();
    const bool winograd = alg == dnnl::algorithm::convolution_winograd;
    Shapes s = shapes_of(g, layout, bias);
    // Winograd's kernels want blocked activations: let the primitive choose
    // (format any) and stage the NHWC tensors through reorders.
    const memory::desc x_user = s.x, y_user = s.y;
    if (winograd) {
      s.x = memory::desc(s.x.dims(), memory::data_type::f32, Tag::any);
      s.y = memory::desc(s.y.dims(), memory::data_type::f32, Tag::any);
      s.w_prim = memory::desc(s.w_user.dims(), memory::data_type::f32, Tag::any);
    }
    // bf16 inputs: the primitive reads bf16 copies (layout of its choice) of
    // the activation inputs and of the weights; its output stays f32 (x for
    // backward-data, y for the forward, the weights for backward-weights).
    // The forward descriptor, also the backward passes' hint, then has bf16
    // src and weights.
    memory::desc fwd_x = s.x, fwd_w = s.w_prim, fwd_y = s.y;
    if (bf16) {
      fwd_x = any_bf16(s.x);
      fwd_w = any_bf16(s.w_user);
      if (pass != Pass::Forward) fwd_y = any_bf16(s.y);
      if (pass != Pass::BackwardData) s.x = any_bf16(s.x);
      if (pass != Pass::BackwardWeights) s.w_prim = any_bf16(s.w_user);
      if (pass != Pass::Forward) s.y = any_bf16(s.y);
    }
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);

    // The forward descriptor: the primitive itself for Forward, the "hint"
    // that the backward passes are created from otherwise. A fused ReLU is
    // an eltwise post-op (alpha 0: max(v, 0)), applied to each output after
    // its bias, in the kernel's registers. Only the forward primitive gets
    // it; the hint stays that of the plain convolution.
    const dnnl::convolution_forward::desc fwd_desc(dnnl::prop_kind::forward_training, alg, fwd_x,
                                                   fwd_w, s.bias, fwd_y, s.strides, s.pad_l,
                                                   s.pad_r);
    dnnl::primitive_attr fwd_attr;  // a new object: copies of an attr share it
    fwd_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (relu) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
      fwd_attr.set_post_ops(ops);
    }
    const dnnl::convolution_forward::primitive_desc fwd_pd(
        fwd_desc, pass == Pass::Forward ? fwd_attr : attr, engine, true);
    if (!fwd_pd) return e;  // no implementation: decline

    memory::desc w_chosen, scratch_md, x_chosen, y_chosen;
    if (pass == Pass::Forward) {
      e->impl = fwd_pd.impl_info_str();
      if (is_reference(e->impl)) return e;
      e->conv = dnnl::convolution_forward(fwd_pd);
      w_chosen = fwd_pd.weights_desc();
      scratch_md = fwd_pd.scratchpad_desc();
      x_chosen = fwd_pd.src_desc();
      y_chosen = fwd_pd.dst_desc();
    } else if (pass == Pass::BackwardData) {
      const dnnl::convolution_backward_data::desc d(alg, s.x, s.w_prim, s.y, s.strides,
                                                    s.pad_l, s.pad_r);
      const dnnl::convolution_backward_data::primitive_desc pd(d, attr, engine, fwd_pd, true);
      if (!pd) return e;
      e->impl = pd.impl_info_str();
      if (is_reference(e->impl)) return e;
      e->conv = dnnl::convolution_backward_data(pd);
      w_chosen = pd.weights_desc();
      scratch_md = pd.scratchpad_desc();
      x_chosen = pd.diff_src_desc();
      y_chosen = pd.diff_dst_desc();
    } else {
      const dnnl::convolution_backward_weights::desc d(alg, s.x, s.w_prim, s.y, s.strides,
                                                       s.pad_l, s.pad_r);
      const dnnl::convolution_backward_weights::primitive_desc pd(d, attr, engine, fwd_pd, true);
      if (!pd) return e;
      e->impl = pd.impl_info_str();
      if (is_reference(e->impl)) return e;
      e->conv = dnnl::convolution_backward_weights(pd);
      w_chosen = pd.diff_weights_desc();
      scratch_md = pd.scratchpad_desc();
      x_chosen = pd.src_desc();
      y_chosen = pd.diff_dst_desc();
    }
    if (winograd && (x_chosen == x_user || y_chosen == y_user)) {
      // Not expected (Winograd kernels are blocked-only); staging assumes it.
      e->usable = false;
      return e;
    }

    // Memory objects without data: the pointers are bound at each call.
    e->x = memory(x_user, engine, DNNL_MEMORY_NONE);
    e->y = memory(y_user, engine, DNNL_MEMORY_NONE);
    e->w_user = memory(s.w_user, engine, DNNL_MEMORY_NONE);
    e->scratch_bytes = scratch_md.get_size();
    if (e->scratch_bytes > 0) e->scratch = memory(scratch_md, engine, DNNL_MEMORY_NONE);

    e->reorders = w_chosen != s.w_user;
    if (e->reorders) {
      e->w_prim = memory(w_chosen, engine, DNNL_MEMORY_NONE);
      e->w_prim_bytes = w_chosen.get_size();
      // Weights go HWIO -> primitive before forward / backward-data; their
      // gradient goes primitive -> HWIO after backward-weights.
      const bool into = pass != Pass::BackwardWeights;
      const memory& from = into ? e->w_user : e->w_prim;
      const memory& to = into ? e->w_prim : e->w_user;
      const dnnl::reorder::primitive_desc rpd(engine, from.get_desc(), engine, to.get_desc(),
                                              attr);
      e->reorder = dnnl::reorder(rpd);
      e->reorder_args = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
      const memory::desc rs = rpd.scratchpad_desc();
      if (rs.get_size() > 0) {
        e->reorder_scratch = memory(rs, engine, DNNL_MEMORY_NONE);
        e->reorder_args[DNNL_ARG_SCRATCHPAD] = e->reorder_scratch;
        e->scratch_bytes = std::max(e->scratch_bytes, rs.get_size());
      }
    } else {
      e->w_prim = e->w_user;
    }

    // The convolution's view of x and y: the NHWC tensors themselves, or
    // (Winograd) their blocked copies.
    // x is an input except for backward-data (dx); y is an output only for
    // the forward (y), an input otherwise (dy). bf16 passes stage their
    // activation inputs only (converted to bf16).
    memory conv_x = e->x, conv_y = e->y;
    const bool x_in = pass != Pass::BackwardData, y_in = pass != Pass::Forward;
    if (winograd || (bf16 && x_in)) conv_x = stage(*e, e->x, x_chosen, x_in, 0, attr);
    if (winograd || (bf16 && y_in)) conv_y = stage(*e, e->y, y_chosen, y_in, 1, attr);

    switch (pass) {
      case Pass::Forward:
        e->conv_args = {{DNNL_ARG_SRC, conv_x}, {DNNL_ARG_WEIGHTS, e->w_prim}, {DNNL_ARG_DST, conv_y}};
        if (bias) {
          e->bias = memory(s.bias, engine, DNNL_MEMORY_NONE);
          e->conv_args[DNNL_ARG_BIAS] = e->bias;
        }
        break;
      case Pass::BackwardData:
        e->conv_args = {{DNNL_ARG_DIFF_DST, conv_y}, {DNNL_ARG_WEIGHTS, e->w_prim},
                        {DNNL_ARG_DIFF_SRC, conv_x}};
        break;
      case Pass::BackwardWeights:
        e->conv_args = {{DNNL_ARG_SRC, conv_x}, {DNNL_ARG_DIFF_DST, conv_y},
                        {DNNL_ARG_DIFF_WEIGHTS, e->w_prim}};
        break;
    }
    if (e->scratch_bytes > 0 && e->scratch) e->conv_args[DNNL_ARG_SCRATCHPAD] = e->scratch;
    e->usable = true;
    return e;
  }

  // Adds a blocked copy of `user` (layout `chosen`) to e.staged, with its
  // reorder (user -> blocked for an input, blocked -> user for an output),
  // and returns the blocked memory, which the convolution then uses.
  memory stage(Entry& e, const memory& user, const memory::desc& chosen, bool input, int slot,
               const dnnl::primitive_attr& attr) const {
    Staged st;
    st.input = input;
    st.slot = slot;
    st.bytes = chosen.get_size();
    st.user = user;
    st.blocked = memory(chosen, engine, DNNL_MEMORY_NONE);
    const memory::dims dims = chosen.dims();  // N, C, H, W
    if (chosen == memory::desc(dims, memory::data_type::f32, Tag::nChw16c) &&
        static_cast<size_t>(fast::nchw16c_size(dims[0], dims[2] * dims[3], dims[1])) * sizeof(float) ==
            st.bytes) {
      st.own = true;
      st.N = dims[0];
      st.HW = dims[2] * dims[3];
      st.C = dims[1];
      e.staged.push_back(std::move(st));
      return e.staged.back().blocked;
    }
    const memory& from = input ? user : st.blocked;
    const memory& to = input ? st.blocked : user;
    const dnnl::reorder::primitive_desc rpd(engine, from.get_desc(), engine, to.get_desc(), attr);
    st.reorder = dnnl::reorder(rpd);
    st.args = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    const memory::desc rs = rpd.scratchpad_desc();
    if (rs.get_size() > 0) {
      // Shares the entry's scratch buffer: the reorders and the convolution
      // run one after another.
      memory scratch_mem(rs, engine, DNNL_MEMORY_NONE);
      st.args[DNNL_ARG_SCRATCHPAD] = scratch_mem;
      e.scratch_bytes = std::max(e.scratch_bytes, rs.get_size());
    }
    e.staged.push_back(std::move(st));
    return e.staged.back().blocked;
  }

  // Runs a staged operand's conversion (NHWC -> blocked for an input,
  // blocked -> NHWC for an output).
  void convert(Staged& st) {
    if (!st.own) {
      st.reorder.execute(stream, st.args);
      return;
    }
    stream.wait();  // (a no-op on the CPU: oneDNN's calls return when done)
    auto* user = static_cast<float*>(st.user.get_data_handle());
    auto* blocked = static_cast<float*>(st.blocked.get_data_handle());
    if (st.input)
      fast::nhwc_to_nchw16c(st.N, st.HW, st.C, user, blocked);
    else
      fast::nchw16c_to_nhwc(st.N, st.HW, st.C, blocked, user);
  }

  // Binds the buffers and runs the entry. oneDNN only reads the inputs; its
  // memory objects take non-const pointers.
  void run(Pass pass, Entry& e, const void* x, const void* y, const void* w, const void* bias) {
    e.x.set_data_handle(const_cast<void*>(x));
    e.y.set_data_handle(const_cast<void*>(y));
    e.w_user.set_data_handle(const_cast<void*>(w));
    if (bias) e.bias.set_data_handle(const_cast<void*>(bias));
    if (e.reorders) e.w_prim.set_data_handle(w_reorder.get(e.w_prim_bytes));
    void* scratch_ptr = e.scratch_bytes > 0 ? scratch.get(e.scratch_bytes) : nullptr;
    if (scratch_ptr) {
      if (e.scratch) e.scratch.set_data_handle(scratch_ptr);
      if (e.reorder_scratch) e.reorder_scratch.set_data_handle(scratch_ptr);
    }
    for (Staged& st : e.staged) {
      st.blocked.set_data_handle(staged[static_cast<size_t>(st.slot)].get(st.bytes));
      auto it = st.args.find(DNNL_ARG_SCRATCHPAD);
      if (it != st.args.end()) it->second.set_data_handle(scratch_ptr);
    }
    for (Staged& st : e.staged)
      if (st.input) convert(st);
    const bool weights_in = pass != Pass::BackwardWeights;
    if (e.reorders && weights_in) e.reorder.execute(stream, e.reorder_args);
    e.conv.execute(stream, e.conv_args);
    if (e.reorders && !weights_in) e.reorder.execute(stream, e.reorder_args);
    for (Staged& st : e.staged)
      if (!st.input) convert(st);
    stream.wait();
  }
};

OneDnnConv::OneDnnConv(int threads, WeightsLayout layout, ConvAlgorithm algorithm)
    : threads_(std::max(1, threads)) {
  try {
    impl_ = std::make_unique<Impl>(layout, algorithm);
  } catch (const dnnl::error& e) {
    throw Error(detail::concat("oneDNN: cannot create the CPU engine: ", e.what()));
  }
}

OneDnnConv::~OneDnnConv() = default;

namespace {
// Runs fn (which creates and / or executes primitives) with the thread count
// set, and turns oneDNN's exceptions into janus::Error naming the geometry.
template <class Fn>
auto guarded(int threads, Pass pass, const ConvGeometry& g, Fn&& fn) {
  const ScopedOmpThreads threads_guard(threads);
  try {
    return fn();
  } catch (const dnnl::error& e) {
    throw Error(detail::concat("oneDNN convolution ", pass_name(pass), " failed (status ",
                               static_cast<int>(e.status), ": ", e.what(), ") for ",
                               conv_geometry_str(g)));
  }
}
}  // namespace

bool OneDnnConv::forward(const ConvGeometry& g, const float* x, const float* w, const float* bias,
                         float* y, bool relu, InputType in) {
  return guarded(threads_, Pass::Forward, g, [&] {
    Entry& e = impl_->entry(Pass::Forward, in, g, bias != nullptr, relu);
    if (!e.usable) return false;
    impl_->run(Pass::Forward, e, x, y, w, bias);
    return true;
  });
}

bool OneDnnConv::backward_data(const ConvGeometry& g, const float* dy, const float* w, float* dx,
                               InputType in) {
  return guarded(threads_, Pass::BackwardData, g, [&] {
    Entry& e = impl_->entry(Pass::BackwardData, in, g, false);
    if (!e.usable) return false;
    impl_->run(Pass::BackwardData, e, dx, dy, w, nullptr);
    return true;
  });
}

bool OneDnnConv::backward_weights(const ConvGeometry& g, const float* x, const float* dy,
                                  float* dw, InputType in) {
  return guarded(threads_, Pass::BackwardWeights, g, [&] {
    Entry& e = impl_->entry(Pass::BackwardWeights, in, g, false);
    if (!e.usable) return false;
    impl_->run(Pass::BackwardWeights, e, x, dy, dw, nullptr);
    return true;
  });
}

std::string OneDnnConv::implementation(Pass pass, const ConvGeometry& g, bool bias, bool relu,
                                      InputType in) {
  return guarded(threads_, pass, g, [&] {
    const Entry& e = impl_->entry(pass, in, g, bias, pass == Pass::Forward && relu);
    return e.usable ? e.impl : std::string();
  });
}

}  // namespace janus::onednn
