"""libFuzzer targets, built with clang (gcc has no libFuzzer) outside the C++ toolchain."""

# Compiler flags of every fuzz build: coverage for libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer, any report fatal (libFuzzer then saves the input).
FUZZ_FLAGS = " ".join([
    "-std=c++20",
    "-O1",
    "-g",
    "-fno-omit-frame-pointer",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-I.",
    "-Ikernel/uapi",
])

def fuzz_target(name, src, seconds = 60):
    """`name`: the fuzzer binary (from `src` and //stack/fuzz:stack_lib); `name`_test runs its
    regressions once, then a campaign of `seconds` from its seed corpus."""
    native.genrule(
        name = name + "_bin",
        srcs = [
            src,
            "//stack/fuzz:fuzz_check.h",
            "//stack/fuzz:libfuzzstack.a",
            "//stack:fuzz_sources",
            "//kernel:uapi_files",
        ],
        outs = [name],
        cmd = "clang++ " + FUZZ_FLAGS + " -fsanitize=fuzzer $(location " + src +
              ") $(location //stack/fuzz:libfuzzstack.a) -o $@",
        executable = True,
    )
    native.sh_test(
        name = name + "_test",
        size = "medium",
        srcs = ["//stack/fuzz:run_fuzz.sh"],
        # Sanitized already (clang, ASan + UBSan): --config=sanitize does not run them again.
        tags = ["no_sanitize"],
        args = [
            "$(rootpath :" + name + ")",
            "--seconds",
            str(seconds),
        ],
        data = [
            ":" + name,
            "//stack/fuzz:header.dict",
            "//stack/fuzz:corpora",
            "//stack/fuzz:regressions",
        ],
    )
