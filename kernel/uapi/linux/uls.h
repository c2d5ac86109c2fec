/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * User-level sandboxing (ulsnet): the user API of /dev/uls.
 *
 * The sandbox region is one range of memory that every process which opts in maps at the same
 * virtual address, ULS_REGION_BASE, backed by the same physical pages in all of them:
 *
 *	int fd = open("/dev/uls", O_RDWR);
 *	struct uls_info info;
 *	ioctl(fd, ULS_IOC_INFO, &info);
 *	void *r = mmap((void *)info.base, info.size, PROT_READ | PROT_WRITE,
 *		       MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
 *
 * mmap() fails with EINVAL unless the mapping starts exactly at the base, at offset 0, is
 * shared, and is no longer than the region.
 *
 * Extensions are registered with ULS_IOC_REGISTER: an entry point, a stack and a state
 * pointer, all inside the region. Every argument is validated (EINVAL for anything outside the
 * region, misaligned or malformed; EEXIST for the same entry and stack twice; EBUSY for a stack
 * overlapping another extension's; ENOSPC when ULS_MAX_EXTENSIONS are registered). Only the
 * registering process, through the descriptor it registered with, may unregister, bind or raise
 * it (EPERM otherwise); ULS_IOC_QUERY reads one back. When the last reference to that open
 * /dev/uls goes (its owner exits or closes it), the extension is unregistered, its timer
 * stopped and its interfaces unbound.
 *
 * Upcalls. An extension bound to an event (ULS_IOC_BIND: a periodic timer) or raised
 * (ULS_IOC_RAISE) runs at user level in the context of the process that is current on that CPU,
 * when it next returns to user mode: on its own stack, with
 *
 *	rdi = state, rsi = the event's time (CLOCK_MONOTONIC ns), rdx = its id,
 *
 * every other general register zero, DS, ES, FS, GS null (selectors and bases), the FPU in its
 * initial state and signals held back. It ends with the return call, syscall
 * ULS_SYSCALL_RETURN (no arguments), which restores the interrupted process exactly as it was
 * (registers, flags, segments, FPU state). Inside an extension only
 * getpid, gettid, clock_gettime and the return call are allowed (others, and every 32-bit call
 * through int $0x80 or sysenter, fail with EPERM); the process's tracer, seccomp filters and
 * audit do not see these calls, which are the extension's, not the process's. A
 * fault inside the extension, or running past its budget (uls.budget_ms, CPU time), ends the
 * upcall: the process resumes as if nothing happened, and the extension's counters say why
 * (ULS_IOC_STATS). An upcall whose process is kept from running (preempted, stopped) while it
 * holds its extension for longer than uls.hold_ms of wall time with an event waiting is ended
 * too (revoked, counted as an overrun), so that the next one starts in another process.
 *
 * The current process takes the upcall if it is a 64-bit user process whose address space has
 * the region at ULS_REGION_BASE readable, writable and executable, or can have it mapped there
 * (the kernel maps it on demand when the region is protected; unprotected, only into a process
 * with CAP_SYS_ADMIN, which could map it itself), and -- when the region is protected -- no
 * other thread or process shares its address space. Otherwise -- the CPU is idle, or runs a
 * kernel thread or a process that cannot take it -- a host, a process waiting in ULS_IOC_HOST,
 * is woken and takes the upcall. Events for an extension that arrive before its upcall ran are
 * merged (counted as coalesced). All of this needs CAP_SYS_ADMIN: an extension runs inside
 * other processes.
 */
#ifndef _UAPI_LINUX_ULS_H
#define _UAPI_LINUX_ULS_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define ULS_API_VERSION 1

/* Where every process maps the region (the same address ulsnet's stock-kernel emulation uses). */
#define ULS_REGION_BASE 0x7e0000000000ULL

struct uls_info {
	__u64 base;     /* ULS_REGION_BASE */
	__u64 size;     /* bytes, a multiple of the page size */
	__u32 version;  /* ULS_API_VERSION */
	__u32 flags;    /* ULS_INFO_* */
};

/*
 * The region is accessible only inside upcalls (boot parameter uls.protect, default 1): a
 * process's own accesses fault, and it loads and reads the region with pwrite()/pread() on
 * /dev/uls at offsets inside the region (EINVAL otherwise).
 */
#define ULS_INFO_PROTECTED 1

#define ULS_MAX_EXTENSIONS 16
#define ULS_NAME_LEN 32

struct uls_extension {
	__u32 id;                 /* out of REGISTER; in for QUERY (1..ULS_MAX_EXTENSIONS) */
	__u32 flags;              /* 0 (none defined yet) */
	__u64 entry;              /* entry point, inside the region */
	__u64 stack_base;         /* lowest address of its stack, page aligned, inside the region */
	__u64 stack_size;         /* bytes, a multiple of the page size, at least one page */
	__u64 state;              /* its state, inside the region (0: none) */
	__s32 owner;              /* out of QUERY: the registering process (tgid) */
	__u32 reserved;           /* 0 */
	char name[ULS_NAME_LEN];  /* NUL-terminated */
};

#define ULS_IOC_MAGIC 'U'
#define ULS_IOC_INFO _IOR(ULS_IOC_MAGIC, 0x00, struct uls_info)
#define ULS_IOC_REGISTER _IOWR(ULS_IOC_MAGIC, 0x01, struct uls_extension)
#define ULS_IOC_UNREGISTER _IOW(ULS_IOC_MAGIC, 0x02, __u32)
#define ULS_IOC_QUERY _IOWR(ULS_IOC_MAGIC, 0x03, struct uls_extension)

/*
 * The return call that ends an upcall (x86-64 system call number): far above the upstream range
 * (451 is cachestat from Linux 6.5 on), so that no upstream call ever takes it.
 */
#define ULS_SYSCALL_RETURN 1000

#define ULS_EVENT_NONE 0  /* unbind */
#define ULS_EVENT_TIMER 1 /* every period_ns, starting one period from now */

#define ULS_PERIOD_MIN_NS 10000ULL          /* 10 us */
#define ULS_PERIOD_MAX_NS 10000000000ULL    /* 10 s */

struct uls_bind {
	__u32 id;        /* a registered extension of the caller */
	__u32 event;     /* ULS_EVENT_* */
	__u64 period_ns; /* ULS_EVENT_TIMER: ULS_PERIOD_MIN_NS..ULS_PERIOD_MAX_NS */
	__u64 reserved;  /* 0 */
};

/*
 * Counters of one extension. Every event ends in exactly one of: an upcall started, coalesced
 * into a pending one, dropped (its extension went away), or still pending. Every upcall started
 * ends in exactly one of: returned, faulted, overran (or is still running).
 */
struct uls_stats {
	__u32 id;              /* in */
	__u32 pending;         /* an event is waiting for its upcall */
	__u64 events;
	__u64 coalesced;
	__u64 upcalls;         /* started */
	__u64 in_current;      /* started in whatever process was current */
	__u64 in_host;         /* started in a host (the CPU had no process that could take it) */
	__u64 host_wakeups;    /* events that woke a host */
	__u64 ineligible;      /* times the current process could not take it */
	__u64 returned;        /* ended with the return call */
	__u64 faults;          /* ended by a fault inside the extension */
	__u64 overruns;        /* ended by running past the budget */
	__u64 denied_syscalls; /* system calls refused inside the extension */
	__u64 run_ns;          /* total time from upcall start to its end */
	__s32 last_pid;        /* the process the last upcall ran in (tgid) */
	__u32 last_fault_sig;  /* signal the last fault would have raised */
	__u64 last_fault_addr; /* its address (si_addr), or 0 */
	__u64 last_fault_ip;   /* the extension's instruction pointer at the fault */
	__u64 pages_mapped;    /* region pages mapped on demand inside its upcalls (protected) */
	/*
	 * Of the overruns: upcalls whose task held the extension longer than uls.hold_ms (wall
	 * time) while an event waited, ended so that the next could start in another task.
	 */
	__u64 revoked;
};

#define ULS_IOC_BIND _IOW(ULS_IOC_MAGIC, 0x04, struct uls_bind)
#define ULS_IOC_RAISE _IOW(ULS_IOC_MAGIC, 0x05, __u32)
#define ULS_IOC_STATS _IOWR(ULS_IOC_MAGIC, 0x06, struct uls_stats)
/*
 * Waits up to the given milliseconds (1..60000) for an event no current process could take,
 * then takes its upcall on the way back to user mode. 0: an event came; else ETIMEDOUT or
 * EINTR.
 */
#define ULS_IOC_HOST _IOW(ULS_IOC_MAGIC, 0x07, __u32)

/*
 * The zero-copy network path. A network interface whose driver supports it (e1000) is bound to
 * an extension with ULS_IOC_NET_BIND: from then on its receive buffers are 2 KiB chunks of a
 * pool in the region, and four rings in the region (struct uls_net_rings, at a page-aligned
 * offset) carry descriptors -- region offsets -- between driver and extension:
 *
 *	fill  extension -> kernel   free buffers for the NIC to receive into
 *	rx    kernel -> extension   received frames (an event for the extension follows)
 *	tx    extension -> kernel   frames to send (taken when the upcall ends, and at every poll)
 *	comp  kernel -> extension   buffers back: sent, refused (ULS_DESC_INVALID) or unused
 *
 * No skb is built and no byte is copied on this path; the kernel's protocol stack never sees
 * the frames. Each ring has a free-running producer and consumer index (ring position = index
 * % ULS_NET_RING_SIZE); the side that produces writes the descriptor before the index. The
 * kernel validates everything it reads from the rings (a buffer outside the pool or not on a
 * chunk boundary, a frame length outside 14..1514) and counts what it refuses. It takes a tx
 * descriptor only while the completion ring has room for that buffer's return, so no buffer
 * is ever lost for want of a completion slot.
 */
#define ULS_NET_RING_SIZE 256
#define ULS_NET_BUF_SIZE 2048
#define ULS_IFNAMSIZ 16

struct uls_desc {
	__u32 off;   /* region offset of the buffer (a chunk boundary in the pool) */
	__u16 len;   /* frame length, without the FCS */
	__u16 flags; /* ULS_DESC_* (completion ring) */
};

#define ULS_DESC_INVALID 1 /* refused: not sent */
#define ULS_DESC_UNUSED 2  /* a receive buffer handed back unused (at unbind) */

struct uls_ring {
	__u32 producer;
	__u32 pad0[15];
	__u32 consumer;
	__u32 pad1[15];
	struct uls_desc desc[ULS_NET_RING_SIZE];
};

struct uls_net_rings {
	struct uls_ring fill, rx, tx, comp;
};

struct uls_net_bind {
	char ifname[ULS_IFNAMSIZ]; /* NUL-terminated */
	__u32 id;                  /* the extension (the caller's) that receives its events */
	__u32 rings_off;           /* page-aligned region offset of its struct uls_net_rings */
	__u32 pool_off;            /* page-aligned region offset of the buffer pool */
	__u32 pool_size;           /* bytes, a multiple of the page size */
	__u32 flags;               /* 0 */
	__u32 reserved;            /* 0 */
};

struct uls_net_stats {
	char ifname[ULS_IFNAMSIZ]; /* in */
	__u32 id;
	__u32 reserved;
	__u64 rx_frames;    /* handed to the extension by descriptor */
	__u64 rx_bytes;
	__u64 rx_ring_full; /* dropped: the rx ring was full (the buffer stayed with the NIC) */
	__u64 rx_errors;    /* dropped: the NIC flagged the frame (errors, fragments) */
	__u64 fill_empty;   /* times a NIC descriptor found no buffer on the fill ring */
	__u64 fill_invalid; /* fill descriptors refused */
	__u64 tx_frames;    /* posted to the NIC */
	__u64 tx_bytes;
	__u64 tx_invalid;   /* tx descriptors refused (returned with ULS_DESC_INVALID) */
	__u64 tx_nic_full;  /* times frames waited because the NIC's ring was full */
	__u64 tx_comp_wait; /* times frames waited for room on the completion ring */
	__u64 completions;  /* sent buffers returned on the completion ring */
	__u64 comp_full;    /* buffers that could not be returned: the completion ring was full */
	__u64 ring_corrupt; /* indices the extension wrote that made no sense (ignored) */
	__u64 events;       /* events raised for the extension */
	__u64 kicks;        /* polls asked for at the end of the extension's upcalls */
	__u64 nic_buffers;  /* receive buffers the NIC holds now */
};

#define ULS_IOC_NET_BIND _IOW(ULS_IOC_MAGIC, 0x08, struct uls_net_bind)
#define ULS_IOC_NET_UNBIND _IOW(ULS_IOC_MAGIC, 0x09, char[ULS_IFNAMSIZ])
#define ULS_IOC_NET_STATS _IOWR(ULS_IOC_MAGIC, 0x0a, struct uls_net_stats)

#endif /* _UAPI_LINUX_ULS_H */
