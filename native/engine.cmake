# The native engine (note for note the Python engine): libcadenza_engine
# (shared, for ctypes) and cadenza_engine_static (for the plugin).
# Included from native/CMakeLists.txt; kept separate from the model step's targets.
set(CADENZA_ENGINE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/numeric.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/portable_math.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/rng.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/tokens.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/vocab_map.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/key.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/key_awareness.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/sampling.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/clock.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/tick_tracker.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/register.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/voices.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/phrase.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/events.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/context.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/continuity.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/texture.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/engine.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/engine_input.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/fake_predictor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/engine/c_api.cpp
)

# The identity with the Python engine needs IEEE arithmetic as Python does it:
# no fused multiply-add, no fast-math (exp and log are portable_math's, not libm's).
set(CADENZA_ENGINE_FLAGS -Wall -Wextra -ffp-contract=off -fno-fast-math)

add_library(cadenza_engine_objects OBJECT ${CADENZA_ENGINE_SOURCES})
target_include_directories(cadenza_engine_objects PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
target_compile_features(cadenza_engine_objects PUBLIC cxx_std_17)
target_compile_options(cadenza_engine_objects PRIVATE ${CADENZA_ENGINE_FLAGS})
set_target_properties(cadenza_engine_objects PROPERTIES POSITION_INDEPENDENT_CODE ON)

# The engine library carries the model step too (cadenza_native_predictor_new:
# the native step made from a weights file), so Python hands the engine a
# weights path rather than a C++ object across two shared libraries.
add_library(cadenza_engine SHARED $<TARGET_OBJECTS:cadenza_engine_objects>)
target_include_directories(cadenza_engine PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
target_link_libraries(cadenza_engine PRIVATE cadenza_model_static)
add_library(cadenza_engine_static STATIC $<TARGET_OBJECTS:cadenza_engine_objects>)
target_include_directories(cadenza_engine_static PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
target_link_libraries(cadenza_engine_static PUBLIC cadenza_model_static)

# The engine's zero-allocation proof uses the model step's counter
# (libcadenza_alloc_counter.so, native/tests/alloc_counter.c).
add_executable(cadenza_engine_bench ${CMAKE_CURRENT_LIST_DIR}/tests/engine_bench.cpp)
target_link_libraries(cadenza_engine_bench PRIVATE cadenza_engine_static dl)
target_compile_options(cadenza_engine_bench PRIVATE -Wall -Wextra)
