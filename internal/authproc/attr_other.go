//go:build !linux

package authproc

import "syscall"

// childAttr has nothing to add outside Linux: the process is stopped by
// its parent's Stop only.
func childAttr() *syscall.SysProcAttr { return nil }
