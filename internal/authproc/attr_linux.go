package authproc

import "syscall"

// childAttr makes the kernel kill the process if its parent dies without
// stopping it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
