{
  "targets": [
    {
      "target_name": "strata_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/socket.cc",
        "native/src/mapping.cc",
        "native/src/poller.cc",
        "native/src/misc.cc",
        "native/src/gmac.cc",
        "native/src/aligned.cc",
        "native/src/crc32c.cc",
        "native/src/page_cache.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
    }
  ]
}
