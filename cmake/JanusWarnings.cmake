# Warnings are errors for Janus's own code (not for third-party headers,
# which are included as SYSTEM by their imported targets).
function(janus_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-Wshadow=local>
    # clang reports an `omp simd` loop it could not vectorise as a warning;
    # under the fuzzers' coverage instrumentation none are, and that is a
    # fact about the optimiser, not a defect in the code.
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:Clang>>:-Wno-pass-failed>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${JANUS_WERROR}>>:-Werror>)
endfunction()
