// A shared library without janus_plugin_descriptor (tests/test_cli_plugins.sh):
// loading it must fail with "not a Janus plugin", not crash.
extern "C" __attribute__((visibility("default"))) int janus_test_not_a_plugin() { return 42; }
