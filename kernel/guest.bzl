"""Programs that run inside the virtual hosts: static (the guest has no libc)."""

def guest_binary(name, srcs, deps = [], **kwargs):
    native.cc_binary(
        name = name,
        srcs = srcs,
        features = ["fully_static_link"],
        linkopts = ["-static"],
        deps = deps,
        **kwargs
    )
