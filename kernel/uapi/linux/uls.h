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
 * registering process may unregister (EPERM otherwise); ULS_IOC_QUERY reads one back.
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
	__u32 reserved; /* 0 */
};

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

#endif /* _UAPI_LINUX_ULS_H */
