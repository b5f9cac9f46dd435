# Run at every build (not only at configure): writes OUT with the git revision the sources are at, only when
# it changed, so a commit without a reconfigure still gives `forge --version` the right revision and an
# unchanged tree rebuilds nothing. Outside a git checkout (a release tarball) the revision is "unknown".
execute_process(COMMAND git -C "${SRC}" rev-parse --short=12 HEAD OUTPUT_VARIABLE rev RESULT_VARIABLE rc
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT rc EQUAL 0 OR rev STREQUAL "")
  set(rev "unknown")
else()
  execute_process(COMMAND git -C "${SRC}" status --porcelain --untracked-files=no OUTPUT_VARIABLE changes
                  RESULT_VARIABLE rc2 ERROR_QUIET)
  if(rc2 EQUAL 0 AND NOT changes STREQUAL "")
    set(rev "${rev}-dirty")
  endif()
endif()
set(text "#define FORGE_GIT_REVISION \"${rev}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
