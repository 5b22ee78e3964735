// Janus CUDA simulator: stream capture and CUDA graphs (runtime.hpp, "stream
// capture", for the rules).
//
// The simulator runs work at once, in issue order; a capture therefore only
// has to keep each operation's work as a closure instead of running it, and a
// graph is the list of those closures in issue order (one valid topological
// order of the real graph, as every node depends on the ones issued before it
// on its stream). What it must get right is what a GPU refuses: a program
// that synchronises, allocates or copies from pageable memory inside a capture
// fails here with the error the CUDA runtime returns, and the capture is
// invalidated as there, so such a bug cannot pass the simulator and break on
// hardware.
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "cuda/sim/internal.hpp"

struct CUgraphNode_st {
  std::string label;  // "kernel 'name'", "cudaMemcpyAsync", ...
  janus::sim::detail::NodeWork work;
  std::vector<const void*> device_pointers;  // device memory the node touches, checked at each replay
};
struct CUgraph_st {
  std::vector<std::shared_ptr<CUgraphNode_st>> nodes;
};
struct CUgraphExec_st {
  std::vector<std::shared_ptr<const CUgraphNode_st>> nodes;
};

namespace janus::sim::detail {
namespace {

struct Capture {
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id thread;
  CUstream_st* origin = nullptr;
  std::vector<CUstream_st*> streams;  // origin first, then the streams that joined
  bool invalidated = false;
  std::string invalidated_by;
  std::unique_ptr<CUgraph_st> graph = std::make_unique<CUgraph_st>();
};

struct Registry {
  std::mutex mutex;
  std::map<std::uint64_t, Capture> active;  // capture id -> capture
  std::uint64_t next_id = 1;
  std::set<CUgraph_st*> graphs;
  std::set<CUgraphExec_st*> execs;
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: usable from static destructors
  return *r;
}
std::atomic<int> g_active_captures{0};  // fast path: no capture anywhere
std::atomic<unsigned long long> g_graph_launches{0};
thread_local int t_replay_depth = 0;
thread_local cudaStreamCaptureMode t_thread_mode = cudaStreamCaptureModeGlobal;

bool is_legacy(cudaStream_t s) { return s == nullptr || s == cudaStreamLegacy; }
bool is_handle(cudaStream_t s) { return !is_legacy(s) && s != cudaStreamPerThread; }

// The capture that stream `s` records into, or nullptr. Registry locked.
Capture* capture_of(Registry& r, cudaStream_t s) {
  if (!is_handle(s) || s->capture == 0) return nullptr;
  auto it = r.active.find(s->capture);
  return it == r.active.end() ? nullptr : &it->second;
}

// A capture of a blocking stream, which the legacy stream would join implicitly. Registry locked.
Capture* blocking_capture(Registry& r) {
  for (auto& [id, c] : r.active)
    for (CUstream_st* s : c.streams)
      if ((s->flags & cudaStreamNonBlocking) == 0) return &c;
  return nullptr;
}

void invalidate(Capture& c, const std::string& why) {
  if (!c.invalidated) c.invalidated_by = why;
  c.invalidated = true;
}

cudaError_t refuse(Capture& c, cudaError_t error, const std::string& why) {
  invalidate(c, why);
  return set_error(error, why + " (the capture is invalidated)");
}

cudaError_t refuse_invalidated(const Capture& c, const char* api) {
  return set_error(cudaErrorStreamCaptureInvalidated,
                   std::string(api) + ": the stream's capture was invalidated earlier by: " + c.invalidated_by);
}

// ---- the argument checks of the graph calls ----------------------------------------
// What the CUDA runtime checks before it accepts a call, one helper a kind of
// check: cudaSuccess, or the error, set as the last error with the message
// "<api>: <what is wrong>".

// A required out- or in-out pointer argument (`name`: the parameter's name).
cudaError_t check_not_null(const void* p, const char* api, const char* name) {
  return p != nullptr ? cudaSuccess : set_error(cudaErrorInvalidValue, std::string(api) + ": null " + name);
}

// (A stream argument: check_stream, internal.hpp, shared with runtime.cpp.)

// A cudaStreamCaptureMode argument (`name`: how the message calls it).
cudaError_t check_capture_mode(cudaStreamCaptureMode mode, const char* api, const char* name) {
  const bool known = mode == cudaStreamCaptureModeGlobal || mode == cudaStreamCaptureModeThreadLocal ||
                     mode == cudaStreamCaptureModeRelaxed;
  return known ? cudaSuccess : set_error(cudaErrorInvalidValue, std::string(api) + ": invalid " + name);
}

// A graph or graph-exec handle among the live ones (`live`, registry locked);
// `what`: "graph" or "graph exec"; `error`: what the call returns otherwise.
template <class Handle>
cudaError_t check_live(const std::set<Handle>& live, Handle h, cudaError_t error, const char* api, const char* what) {
  return live.count(h) != 0 ? cudaSuccess : set_error(error, std::string(api) + ": not a live " + what);
}

// cudaGraphDestroy / cudaGraphExecDestroy: a live handle of `live` is
// forgotten and deleted; another is cudaErrorInvalidValue.
template <class Handle>
cudaError_t destroy_live(std::set<Handle> Registry::*live, Handle h, const char* api, const char* what) {
  auto& r = registry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    if (cudaError_t e = check_live(r.*live, h, cudaErrorInvalidValue, api, what); e != cudaSuccess) return e;
    (r.*live).erase(h);
  }
  delete h;
  return cudaSuccess;
}

bool device_pointers_live(const CUgraphNode_st& node, std::string* which) {
  for (const void* p : node.device_pointers)
    if (!is_device_memory(p)) {
      std::ostringstream s;
      s << node.label << " replayed from a graph: its device pointer " << p
        << " (cudaMalloc memory at capture) has been freed since";
      *which = s.str();
      return false;
    }
  return true;
}

cudaError_t run_nodes(const std::vector<std::shared_ptr<const CUgraphNode_st>>& nodes, cudaStream_t stream) {
  struct Depth {
    Depth() { ++t_replay_depth; }
    ~Depth() { --t_replay_depth; }
  } depth;
  for (const auto& node : nodes) {
    std::string why;
    if (!device_pointers_live(*node, &why)) return set_error(cudaErrorIllegalAddress, why);
    if (cudaError_t e = node->work(stream); e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

}  // namespace

bool replaying_graph() { return t_replay_depth > 0; }

bool capture_concerns(cudaStream_t stream) {
  if (g_active_captures.load(std::memory_order_acquire) == 0) return false;
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (is_legacy(stream)) return blocking_capture(r) != nullptr;
  return capture_of(r, stream) != nullptr;
}

cudaError_t capture_node(cudaStream_t stream, const char* api, std::string label, NodeWork work,
                         std::vector<const void*> device_pointers, bool pageable_host) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (is_legacy(stream)) {
    if (Capture* c = blocking_capture(r))
      return refuse(*c, cudaErrorStreamCaptureImplicit,
                    std::string(api) + " on the legacy default stream while a blocking stream captures "
                                       "(an implicit dependency on the capture)");
    return set_error(cudaErrorUnknown, std::string(api) + ": no capture concerns this stream");
  }
  Capture* c = capture_of(r, stream);
  if (c == nullptr) return set_error(cudaErrorUnknown, std::string(api) + ": the stream does not capture");
  if (c->invalidated) return refuse_invalidated(*c, api);
  if (pageable_host)
    return refuse(*c, cudaErrorStreamCaptureUnsupported,
                  std::string(api) + " from or to pageable host memory on a capturing stream (use cudaMallocHost "
                                     "memory)");
  auto node = std::make_shared<CUgraphNode_st>();
  node->label = std::move(label);
  node->work = std::move(work);
  device_pointers.erase(std::remove_if(device_pointers.begin(), device_pointers.end(),
                                       [](const void* p) { return p == nullptr || !is_device_memory(p); }),
                        device_pointers.end());
  node->device_pointers = std::move(device_pointers);
  c->graph->nodes.push_back(std::move(node));
  ++stream->captured_nodes;
  return cudaSuccess;
}

cudaError_t invalidate_capture(cudaStream_t stream, cudaError_t error, const std::string& why) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  Capture* c = is_legacy(stream) ? blocking_capture(r) : capture_of(r, stream);
  if (c == nullptr) return set_error(error, why);
  return refuse(*c, error, why);
}

cudaError_t check_unsafe_call(const char* api) {
  if (g_active_captures.load(std::memory_order_acquire) == 0) return cudaSuccess;
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto me = std::this_thread::get_id();
  if (t_thread_mode == cudaStreamCaptureModeRelaxed) return cudaSuccess;
  for (auto& [id, c] : r.active) {
    const bool own = c.thread == me && c.mode != cudaStreamCaptureModeRelaxed;
    const bool global_elsewhere =
        t_thread_mode == cudaStreamCaptureModeGlobal && c.thread != me && c.mode == cudaStreamCaptureModeGlobal;
    if (own || global_elsewhere)
      return refuse(c, cudaErrorStreamCaptureUnsupported,
                    std::string(api) + " is not permitted while a stream captures (" +
                        (own ? "this thread's capture" : "a global-mode capture on another thread") + ")");
  }
  return cudaSuccess;
}

cudaError_t check_synchronize(cudaStream_t stream, const char* api, bool whole_device) {
  if (g_active_captures.load(std::memory_order_acquire) == 0) return cudaSuccess;
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (whole_device) {
    cudaError_t e = cudaSuccess;
    for (auto& [id, c] : r.active)
      e = refuse(c, cudaErrorStreamCaptureUnsupported, std::string(api) + " while a stream captures");
    return e;
  }
  if (is_legacy(stream)) {
    if (Capture* c = blocking_capture(r))
      return refuse(*c, cudaErrorStreamCaptureImplicit,
                    std::string(api) + " of the legacy default stream while a blocking stream captures");
    return cudaSuccess;
  }
  if (Capture* c = capture_of(r, stream))
    return refuse(*c, cudaErrorStreamCaptureUnsupported, std::string(api) + " of a capturing stream");
  return cudaSuccess;
}

cudaError_t capture_event_record(cudaEvent_t event, cudaStream_t stream) {
  if (g_active_captures.load(std::memory_order_acquire) == 0) {
    event->capture = 0;
    return cudaSuccess;
  }
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (is_legacy(stream))
    if (Capture* c = blocking_capture(r))
      return refuse(*c, cudaErrorStreamCaptureImplicit,
                    "cudaEventRecord on the legacy default stream while a blocking stream captures");
  Capture* c = capture_of(r, stream);
  if (c == nullptr) {
    event->capture = 0;
    return cudaSuccess;
  }
  if (c->invalidated) return refuse_invalidated(*c, "cudaEventRecord");
  event->capture = stream->capture;
  event->source = stream;
  event->source_nodes = stream->captured_nodes;
  return cudaSuccess;
}

cudaError_t capture_stream_wait(cudaStream_t stream, cudaEvent_t event) {
  if (g_active_captures.load(std::memory_order_acquire) == 0 || event->capture == 0) return cudaSuccess;
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.active.find(event->capture);
  if (it == r.active.end()) return cudaSuccess;  // that capture has ended
  Capture& c = it->second;
  if (!is_handle(stream))
    return refuse(c, cudaErrorStreamCaptureImplicit,
                  "cudaStreamWaitEvent: the legacy / per-thread stream waits on an event recorded in a capture");
  if (stream->capture == 0) {  // fork: the stream joins the capture
    stream->capture = event->capture;
    stream->captured_nodes = stream->joined_nodes = 0;
    c.streams.push_back(stream);
    return cudaSuccess;
  }
  if (stream->capture != event->capture)
    return refuse(c, cudaErrorStreamCaptureMerge,
                  "cudaStreamWaitEvent: a stream of one capture waits on an event of another capture");
  if (event->source != stream) event->source->joined_nodes = std::max(event->source->joined_nodes, event->source_nodes);
  return cudaSuccess;
}

bool event_in_active_capture(cudaEvent_t event) {
  if (event->capture == 0) return false;
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.active.count(event->capture) != 0;
}

}  // namespace janus::sim::detail

using janus::sim::detail::Capture;
using janus::sim::detail::registry;
using janus::sim::detail::set_error;

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  using namespace janus::sim::detail;
  const char* api = "cudaStreamBeginCapture";
  if (cudaError_t e = check_stream(stream, api); e != cudaSuccess) return e;
  if (is_legacy(stream))
    return set_error(cudaErrorStreamCaptureUnsupported,
                     "cudaStreamBeginCapture: the legacy default stream cannot capture (create a stream)");
  if (stream == cudaStreamPerThread)
    return set_error(cudaErrorNotSupported,
                     "cudaStreamBeginCapture: capturing cudaStreamPerThread is not simulated (create a stream)");
  if (cudaError_t e = check_capture_mode(mode, api, "cudaStreamCaptureMode"); e != cudaSuccess) return e;
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (stream->capture != 0)
    return set_error(cudaErrorIllegalState, "cudaStreamBeginCapture: the stream is already capturing");
  const std::uint64_t id = r.next_id++;
  Capture& c = r.active[id];
  c.mode = mode;
  c.thread = std::this_thread::get_id();
  c.origin = stream;
  c.streams.push_back(stream);
  stream->capture = id;
  stream->captured_nodes = stream->joined_nodes = 0;
  g_active_captures.fetch_add(1, std::memory_order_release);
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* pGraph) {
  using namespace janus::sim::detail;
  const char* api = "cudaStreamEndCapture";
  if (cudaError_t e = check_not_null(pGraph, api, "pGraph"); e != cudaSuccess) return e;
  *pGraph = nullptr;
  if (cudaError_t e = check_stream(stream, api); e != cudaSuccess) return e;
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  Capture* c = capture_of(r, stream);
  if (c == nullptr) return set_error(cudaErrorIllegalState, "cudaStreamEndCapture: the stream is not capturing");
  if (c->origin != stream)
    return set_error(cudaErrorStreamCaptureUnmatched,
                     "cudaStreamEndCapture on a stream that joined the capture, not the one that began it");
  if (c->mode != cudaStreamCaptureModeRelaxed && c->thread != std::this_thread::get_id())
    return refuse(*c, cudaErrorStreamCaptureWrongThread,
                  "cudaStreamEndCapture from another thread than the one that began the (non-relaxed) capture");
  std::string unjoined;
  for (CUstream_st* s : c->streams)
    if (s != stream && s->captured_nodes > s->joined_nodes) unjoined = "a forked stream's work was not joined back";
  const bool invalidated = c->invalidated;
  const std::string why = c->invalidated_by;
  std::unique_ptr<CUgraph_st> graph = std::move(c->graph);
  const std::uint64_t id = stream->capture;
  for (CUstream_st* s : c->streams) s->capture = 0;
  r.active.erase(id);  // c dangles from here on
  g_active_captures.fetch_sub(1, std::memory_order_release);
  if (invalidated)
    return set_error(cudaErrorStreamCaptureInvalidated,
                     "cudaStreamEndCapture: the capture was invalidated by: " + why + "; no graph");
  if (!unjoined.empty())
    return set_error(cudaErrorStreamCaptureUnjoined, "cudaStreamEndCapture: " + unjoined + "; no graph");
  CUgraph_st* g = graph.release();
  r.graphs.insert(g);
  *pGraph = g;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* pCaptureStatus) {
  using namespace janus::sim::detail;
  const char* api = "cudaStreamIsCapturing";
  if (cudaError_t e = check_not_null(pCaptureStatus, api, "pointer"); e != cudaSuccess) return e;
  if (cudaError_t e = check_stream(stream, api); e != cudaSuccess) return e;
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (is_legacy(stream) && blocking_capture(r) != nullptr)
    return set_error(cudaErrorStreamCaptureImplicit,
                     "cudaStreamIsCapturing of the legacy default stream while a blocking stream captures");
  const Capture* c = capture_of(r, stream);
  *pCaptureStatus = c == nullptr     ? cudaStreamCaptureStatusNone
                    : c->invalidated ? cudaStreamCaptureStatusInvalidated
                                     : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode) {
  using namespace janus::sim::detail;
  const char* api = "cudaThreadExchangeStreamCaptureMode";
  if (cudaError_t e = check_not_null(mode, api, "pointer"); e != cudaSuccess) return e;
  if (cudaError_t e = check_capture_mode(*mode, api, "mode"); e != cudaSuccess) return e;
  std::swap(*mode, t_thread_mode);
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* pGraphExec, cudaGraph_t graph, unsigned long long flags) {
  using namespace janus::sim::detail;
  const char* api = "cudaGraphInstantiate";
  if (cudaError_t e = check_not_null(pGraphExec, api, "pGraphExec"); e != cudaSuccess) return e;
  if (flags != 0) return set_error(cudaErrorInvalidValue, "cudaGraphInstantiate: flags other than 0 are not simulated");
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (cudaError_t e = check_live(r.graphs, graph, cudaErrorInvalidValue, api, "graph"); e != cudaSuccess) return e;
  auto* exec = new CUgraphExec_st;
  exec->nodes.assign(graph->nodes.begin(), graph->nodes.end());  // the exec outlives cudaGraphDestroy
  r.execs.insert(exec);
  *pGraphExec = exec;
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t graphExec, cudaStream_t stream) {
  using namespace janus::sim::detail;
  const char* api = "cudaGraphLaunch";
  if (cudaError_t e = check_stream(stream, api); e != cudaSuccess) return e;
  std::vector<std::shared_ptr<const CUgraphNode_st>> nodes;
  {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    if (cudaError_t e = check_live(r.execs, graphExec, cudaErrorInvalidResourceHandle, api, "graph exec");
        e != cudaSuccess)
      return e;
    nodes = graphExec->nodes;
  }
  if (capture_concerns(stream)) {  // a child graph of the capture
    std::vector<const void*> pointers;
    for (const auto& n : nodes) pointers.insert(pointers.end(), n->device_pointers.begin(), n->device_pointers.end());
    return capture_node(stream, "cudaGraphLaunch", "a child graph",
                        [nodes](cudaStream_t s) { return run_nodes(nodes, s); }, std::move(pointers), false);
  }
  g_graph_launches.fetch_add(1, std::memory_order_relaxed);
  return run_nodes(nodes, stream);
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t graphExec) {
  return janus::sim::detail::destroy_live(&janus::sim::detail::Registry::execs, graphExec, "cudaGraphExecDestroy",
                                          "graph exec");
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  return janus::sim::detail::destroy_live(&janus::sim::detail::Registry::graphs, graph, "cudaGraphDestroy", "graph");
}

cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, size_t* numNodes) {
  using namespace janus::sim::detail;
  const char* api = "cudaGraphGetNodes";
  if (cudaError_t e = check_not_null(numNodes, api, "numNodes"); e != cudaSuccess) return e;
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (cudaError_t e = check_live(r.graphs, graph, cudaErrorInvalidValue, api, "graph"); e != cudaSuccess) return e;
  if (nodes == nullptr) {
    *numNodes = graph->nodes.size();
    return cudaSuccess;
  }
  const size_t n = std::min(*numNodes, graph->nodes.size());
  for (size_t i = 0; i < n; ++i) nodes[i] = graph->nodes[i].get();
  *numNodes = n;
  return cudaSuccess;
}

namespace janus::sim {
unsigned long long graph_launch_count() { return detail::g_graph_launches.load(std::memory_order_relaxed); }
}  // namespace janus::sim
