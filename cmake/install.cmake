# `cmake --install`: the forge binary, its man page and bash/zsh completions (generated from the binary's
# own command tree after it is built), and a CMake package (find_package(forge)) exporting the libraries as
# forge::base, forge::ckpt, forge::graft, ... with their headers. `cpack -G DEB` packages the same tree.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(FORGE_LIBRARIES base st ckpt plan quant quant_passes inspect verify verify_model graft card)
foreach(lib IN LISTS FORGE_LIBRARIES)
  set_target_properties(forge_${lib} PROPERTIES EXPORT_NAME ${lib})
endforeach()
list(TRANSFORM FORGE_LIBRARIES PREPEND forge_ OUTPUT_VARIABLE FORGE_LIBRARY_TARGETS)

# Man page and completions: run the binary that was just built (under the emulator when cross-compiling).
set(FORGE_DOCS_DIR "${CMAKE_BINARY_DIR}/share")
add_custom_command(
  OUTPUT ${FORGE_DOCS_DIR}/forge.1 ${FORGE_DOCS_DIR}/forge.bash ${FORGE_DOCS_DIR}/_forge
  COMMAND ${CMAKE_COMMAND} -E make_directory ${FORGE_DOCS_DIR}
  COMMAND ${CMAKE_CROSSCOMPILING_EMULATOR} $<TARGET_FILE:forge> --print-man > ${FORGE_DOCS_DIR}/forge.1
  COMMAND ${CMAKE_CROSSCOMPILING_EMULATOR} $<TARGET_FILE:forge> --print-completion bash > ${FORGE_DOCS_DIR}/forge.bash
  COMMAND ${CMAKE_CROSSCOMPILING_EMULATOR} $<TARGET_FILE:forge> --print-completion zsh > ${FORGE_DOCS_DIR}/_forge
  DEPENDS forge
  COMMENT "man page and shell completions from forge --help")
add_custom_target(forge_docs ALL DEPENDS ${FORGE_DOCS_DIR}/forge.1 ${FORGE_DOCS_DIR}/forge.bash ${FORGE_DOCS_DIR}/_forge)

install(TARGETS forge RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${FORGE_DOCS_DIR}/forge.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${FORGE_DOCS_DIR}/forge.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME forge)
install(FILES ${FORGE_DOCS_DIR}/_forge DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)

# The libraries and their headers, under include/forge-toolkit/ (the headers include each other as
# "forge/ckpt/checkpoint.h", "graft/graft.h": folder names too generic for include/ itself).
set(FORGE_INCLUDE_DIR ${CMAKE_INSTALL_INCLUDEDIR}/forge-toolkit)
install(TARGETS ${FORGE_LIBRARY_TARGETS} EXPORT forgeTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${FORGE_INCLUDE_DIR})
install(DIRECTORY forge graft quantize inspect verify DESTINATION ${FORGE_INCLUDE_DIR}
        FILES_MATCHING PATTERN "*.h" PATTERN "cli" EXCLUDE)
install(EXPORT forgeTargets NAMESPACE forge:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/forge)
configure_package_config_file(cmake/forgeConfig.cmake.in ${CMAKE_BINARY_DIR}/forgeConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/forge)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/forgeConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/forgeConfig.cmake ${CMAKE_BINARY_DIR}/forgeConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/forge)

# Debian package: the whole install tree; dependencies from the binary's shared libraries (dpkg-shlibdeps).
set(CPACK_PACKAGE_NAME forge)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "forge developers <forge@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Offline surgery on Qwen3.5/3.6 MTP checkpoints (inspect, convert, quantize, graft, verify)")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/forge-mtp/forge")
set(CPACK_STRIP_FILES ON)
include(CPack)
