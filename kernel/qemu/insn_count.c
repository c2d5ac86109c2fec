/* A QEMU TCG plugin (kernel/vm.sh --count-insns): counts the instructions a guest executes, in
 * user space and in its kernel apart, and writes both counts whenever the guest executes a
 * marker, so that a program in the guest can take the exact instruction count of a stretch of
 * its run (kernel/guest/guest_util.h, GUEST_INSN_MARK). Instructions, unlike time, do not move
 * with the load on the host: the cost measure of //bench:throughput --hosts=vm.
 *
 * Counting: every translated block adds its length to the user or the kernel counter each time
 * it runs (inline, no call), by the block's address: the upper half of the x86-64 address space
 * is the kernel's. A block left early (a fault in its middle) still counts whole: a few
 * instructions per fault, the same in every run.
 *
 * Marker: the 8-byte no-op "nopl 0x??534c55(%rax,%rax,1)" (0f 1f 84 00 55 4c 53 TAG), which no
 * compiler emits; TAG is one byte the guest chooses. Each execution writes, through QEMU's log
 * (-d plugin, -D FILE):
 *   ULSNET-INSN tag=TAG user=U kernel=K
 * U and K counting from the guest's start. One vCPU per QEMU here (-smp 1): the counters are
 * plain, as the inline additions of one vCPU never race.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kernel/qemu/plugin_api.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

static uint64_t user_insns, kernel_insns;

static const uint8_t marker[7] = { 0x0f, 0x1f, 0x84, 0x00, 0x55, 0x4c, 0x53 };

#define KERNEL_HALF 0xffff800000000000ull

static void on_marker(unsigned int vcpu, void *tag)
{
	char line[128];

	(void)vcpu;
	snprintf(line, sizeof(line), "ULSNET-INSN tag=%u user=%llu kernel=%llu\n",
		 (unsigned int)(uintptr_t)tag, (unsigned long long)user_insns,
		 (unsigned long long)kernel_insns);
	qemu_plugin_outs(line);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb);
	uint64_t *counter = qemu_plugin_tb_vaddr(tb) >= KERNEL_HALF ? &kernel_insns : &user_insns;

	(void)id;
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, counter, n);
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		const uint8_t *d;

		if (qemu_plugin_insn_size(insn) != 8)
			continue;
		d = qemu_plugin_insn_data(insn);
		if (memcmp(d, marker, sizeof(marker)) == 0)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS,
							       (void *)(uintptr_t)d[7]);
	}
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
					   char **argv)
{
	(void)info;
	(void)argc;
	(void)argv;
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	return 0;
}
