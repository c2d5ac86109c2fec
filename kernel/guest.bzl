"""Programs that run inside the virtual hosts: static (the guest has no libc)."""

def guest_binary(name, srcs, deps = [], tags = [], **kwargs):
    """A static binary for a guest. Tagged no_sanitize: sanitizer runtimes do not link
    statically, so --config=sanitize (.bazelrc) leaves these out, and every test that runs one."""
    native.cc_binary(
        name = name,
        srcs = srcs,
        features = ["fully_static_link"],
        linkopts = ["-static"],
        deps = deps,
        tags = tags + ["no_sanitize"],
        **kwargs
    )
