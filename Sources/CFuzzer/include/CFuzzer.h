// libFuzzer's driver, for switchboard-fuzz built with -sanitize=fuzzer: SwiftPM links an
// executable's entry point under its own name, so the fuzz driver calls libFuzzer from there
// instead of using libFuzzer's main. Only declared here; the sanitizer runtime defines it.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
