#include "cuda/conv_algo_choice.hpp"

#include <string>

#include "core/env_settings.hpp"
#include "janus/error.hpp"

namespace janus::cuda {

AlgoRanking rank_algorithms(const std::vector<AlgoCandidate>& ranked, size_t workspace_limit,
                            bool want_deterministic, bool allow_transforms) {
  AlgoRanking out;
  std::vector<AlgoCandidate> nondeterministic;  // tried after every deterministic one
  for (const AlgoCandidate& c : ranked) {
    std::string why;
    if (!c.status_ok) why = "not available for this geometry";
    else if (!c.math_matches) why = "ranked for another math type than the descriptor's";
    else if (c.workspace > workspace_limit)
      why = detail::concat("workspace ", c.workspace, " bytes over the limit of ", workspace_limit);
    else if (c.transform && !allow_transforms) why = "transform algorithm (numerics; JANUS_CUDNN_TRANSFORMS=1 allows it)";
    if (!why.empty()) {
      out.rejected.push_back(c.name + ": " + why);
      continue;
    }
    if (want_deterministic && !c.deterministic) nondeterministic.push_back(c);
    else out.order.push_back(c);
  }
  out.order.insert(out.order.end(), nondeterministic.begin(), nondeterministic.end());
  return out;
}

int run_first_working(const AlgoRanking& ranking, size_t start,
                      const std::function<AlgoRun(const AlgoCandidate&)>& run, std::vector<std::string>& failures) {
  for (size_t i = start; i < ranking.order.size(); ++i) {
    const AlgoCandidate& c = ranking.order[i];
    switch (run(c)) {
      case AlgoRun::Ok: return static_cast<int>(i);
      case AlgoRun::NotSupported: failures.push_back(c.name + ": NOT_SUPPORTED when run"); break;
      case AlgoRun::NoWorkspace: failures.push_back(c.name + ": its workspace could not be allocated"); break;
    }
  }
  return -1;
}

bool cudnn_transforms_allowed() { return env::flag("JANUS_CUDNN_TRANSFORMS", false); }
bool cudnn_log_enabled() { return env::flag("JANUS_CUDNN_LOG", false); }

}  // namespace janus::cuda
