// The trainer's run-config parser: parse_run_config on the input as JSON
// (which also builds the model, optimizer and schedule once to check them).
// Input that is not JSON at all is skipped: nlohmann's parser is not ours.
#include <janus/error.hpp>
#include <janus/nlohmann_json.hpp>
#include <janus/trainer.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    janus::RunConfig c = janus::parse_run_config(j, "fuzz.json");
    // The resolved form must parse back to the same config.
    janus::RunConfig again = janus::parse_run_config(c.to_json(), "fuzz.json (resolved)");
    if (again.to_json() != c.to_json()) std::abort();
  } catch (const janus::Error&) {
  }
  return 0;
}
