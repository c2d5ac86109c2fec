"""bpf_object: a BPF program built from C with clang's BPF target and embedded in C++.

    bpf_object(name = "xdp_forward_bpf", src = "bpf/xdp_forward.bpf.c")

makes the cc_library `:xdp_forward_bpf` with the header `<package>/xdp_forward_bpf.h`:

    inline constexpr unsigned char kXdpForwardBpf[] = {...};   // the ELF object, with BTF

so that the program is part of the binary (nothing is read from disk at run time) and is
loaded with libbpf's bpf_object__open_mem. clang and the kernel UAPI headers come from Debian
(tools/setup.sh installs clang, libbpf-dev and linux-libc-dev).
"""

def _symbol(name):
    return "k" + "".join([p[:1].upper() + p[1:] for p in name.split("_")])

def bpf_object(name, src, hdrs = [], visibility = None):
    obj = name + ".o"
    native.genrule(
        name = name + "_obj",
        srcs = [src] + hdrs,
        outs = [obj],
        cmd = "/usr/bin/clang -O2 -g -Wall -Werror -target bpf " +
              "-I/usr/include/x86_64-linux-gnu -c $(location " + src + ") -o $@",
    )
    sym = _symbol(name)
    native.genrule(
        name = name + "_hdr",
        srcs = [obj],
        outs = [name + ".h"],
        cmd = ("(echo '// Generated from " + src + " by tools/bpf.bzl: the BPF ELF object.'; " +
               "echo '#pragma once'; echo '#include <cstddef>'; " +
               "echo 'inline constexpr unsigned char " + sym + "[] = {'; " +
               "/usr/bin/od -An -v -tx1 $< | /bin/sed -e 's/\\([0-9a-f][0-9a-f]\\)/0x\\1,/g'; " +
               "echo '};'; " +
               "echo 'inline constexpr size_t " + sym + "Size = sizeof(" + sym + ");') > $@"),
    )
    native.cc_library(
        name = name,
        hdrs = [name + ".h"],
        visibility = visibility,
    )
