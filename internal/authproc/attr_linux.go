package authproc

import "syscall"

// ChildAttr makes the kernel kill a child process if its parent dies
// without stopping it.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
