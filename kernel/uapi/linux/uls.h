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

#define ULS_IOC_MAGIC 'U'
#define ULS_IOC_INFO _IOR(ULS_IOC_MAGIC, 0x00, struct uls_info)

#endif /* _UAPI_LINUX_ULS_H */
