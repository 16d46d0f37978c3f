// sysscan corpus: a Go program (Debian golang-go 1.19, amd64).
//
// Go makes its system calls itself, without libc. The runtime's own calls are
// assembly functions with constant numbers (runtime.write1, runtime.futex, ...);
// everything in package syscall goes through wrappers that take the number as
// a parameter:
//
//   - syscall.Syscall / RawSyscall / Syscall6 -> syscall.RawSyscall6 ->
//     runtime/internal/syscall.Syscall6, register ABI (ABIInternal): the number
//     travels in AX;
//   - syscall.Getuid -> syscall.rawSyscallNoError, an ABI0 assembly function:
//     stack ABI, the number is at trap+0(FP), 8(SP) on entry, stored there by
//     the ABIInternal->ABI0 wrapper the linker generates.
//
// Everything executed is harmless: getpid, getppid, getuid, getpriority,
// reading /etc/hostname, writing to stdout.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	pid, _, _ := syscall.Syscall(syscall.SYS_GETPID, 0, 0, 0)
	ppid, _, _ := syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	uid := syscall.Getuid()
	prio, _, _ := syscall.Syscall6(syscall.SYS_GETPRIORITY, 0, 0, 0, 0, 0, 0)
	data, err := os.ReadFile("/etc/hostname")
	fmt.Println("sysscan corpus: go", pid > 0, ppid > 0, uid >= 0, prio > 0, len(data) >= 0, err == nil)
}
