// Loading a plugin binary, for the test hosts: dlopen on Linux and macOS,
// LoadLibrary on Windows (the cross-built hosts run the Windows build under Wine).
#pragma once

#include <string>

#ifdef _WIN32
#ifndef NOMINMAX
#define NOMINMAX  // windows.h must not define min and max over std::min
#endif
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace shared_library {

// The library at `path`, or nullptr with the reason in `error`.
inline void* open(const char* path, std::string& error) {
#ifdef _WIN32
    HMODULE module = LoadLibraryA(path);
    if (module == nullptr) {
        error = "LoadLibrary error " + std::to_string(GetLastError());
    }
    return reinterpret_cast<void*>(module);
#else
    void* library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
        const char* why = dlerror();
        error = why != nullptr ? why : "dlopen failed";
    }
    return library;
#endif
}

inline void* symbol(void* library, const char* name) {
#ifdef _WIN32
    return reinterpret_cast<void*>(GetProcAddress(static_cast<HMODULE>(library), name));
#else
    return dlsym(library, name);
#endif
}

inline void close(void* library) {
#ifdef _WIN32
    FreeLibrary(static_cast<HMODULE>(library));
#else
    dlclose(library);
#endif
}

}  // namespace shared_library
