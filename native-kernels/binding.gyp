# rankwise-native: node-addon-api glue (src/addon.cc) + Eigen kernels (src/kernels.cc).
#
# src/kernels.cc is compiled once per instruction-set variant, each as its own static library with its
# own namespace (rw_baseline / rw_avx2, and Eigen renamed to Eigen_baseline / Eigen_avx2 so the two
# variants' template instantiations cannot be merged by the linker); src/addon.cc picks one at load
# with __builtin_cpu_supports. Non-x86 builds compile only the baseline.
#
# Flags are portable (no -march=native). Eigen is header-only (Debian libeigen3-dev, /usr/include/eigen3):
# nothing is linked beyond the C++ runtime.
{
  "variables": {
    "eigen_include%": "/usr/include/eigen3",
  },
  "target_defaults": {
    # -isystem: Eigen's own warnings are not ours to fix (MSVC gets a plain include path).
    "cflags": ["-isystem<(eigen_include)"],
    "defines": ["NAPI_VERSION=8", "EIGEN_NO_DEBUG", "EIGEN_MPL2_ONLY", "EIGEN_DONT_PARALLELIZE"],
    # C++ exceptions on: Eigen's allocation failures become JS errors instead of aborting the process.
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
    "cflags_cc": ["-std=c++17", "-fexceptions"],
    "xcode_settings": {
      "OTHER_CFLAGS": ["-isystem<(eigen_include)"],
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "MACOSX_DEPLOYMENT_TARGET": "11.0",
    },
    "msvs_settings": {
      "VCCLCompilerTool": {
        "ExceptionHandling": 1,
        "AdditionalIncludeDirectories": ["<(eigen_include)"],
        "AdditionalOptions": ["/std:c++17", "/bigobj"],
      },
    },
  },
  "targets": [
    {
      "target_name": "kernels_baseline",
      "type": "static_library",
      "sources": ["src/kernels.cc"],
      "defines": ["RW_VARIANT_BASELINE"],
    },
    {
      "target_name": "rankwise_native",
      "sources": ["src/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_CPP_EXCEPTIONS"],
      # The baseline library comes first on the link line, so any inline function both variants
      # share (from the C++ standard library) resolves to the baseline copy, never the AVX2 one.
      "dependencies": ["kernels_baseline"],
      "conditions": [
        ["target_arch=='x64' or target_arch=='ia32'", {
          "dependencies": ["kernels_avx2"],
          "defines": ["RW_HAVE_AVX2=1"],
        }],
      ],
    },
  ],
  "conditions": [
    ["target_arch=='x64' or target_arch=='ia32'", {
      "targets": [
        {
          "target_name": "kernels_avx2",
          "type": "static_library",
          "sources": ["src/kernels.cc"],
          "defines": ["RW_VARIANT_AVX2"],
          "cflags": ["-mavx2", "-mfma"],
          "xcode_settings": {"OTHER_CFLAGS": ["-mavx2", "-mfma"]},
          "msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["/arch:AVX2"]}},
        },
      ],
    }],
  ],
}
