# `cmake --install` puts the libraries in lib/, headers under include/pacer/ and a CMake
# package so that an outside project can find_package(Pacer) and link Pacer::pacer.
include(CMakePackageConfigHelpers)

get_property(pacer_layers GLOBAL PROPERTY PACER_LAYERS)
# Installed libraries find each other next to themselves.
set_target_properties(${pacer_layers} PROPERTIES INSTALL_RPATH "$ORIGIN")

install(TARGETS ${pacer_layers} pacer_all EXPORT PacerTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS pacer_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY core autograd ops nn optim data models
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/pacer
        FILES_MATCHING PATTERN "*.h")
install(FILES include/pacer/pacer.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/pacer)

install(EXPORT PacerTargets NAMESPACE Pacer:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Pacer)
configure_package_config_file(cmake/PacerConfig.cmake.in ${PROJECT_BINARY_DIR}/PacerConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Pacer)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/PacerConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/PacerConfig.cmake ${PROJECT_BINARY_DIR}/PacerConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Pacer)
