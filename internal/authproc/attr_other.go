//go:build !linux

package authproc

import "syscall"

// ChildAttr has nothing to add outside Linux: a child process is stopped
// by its parent only.
func ChildAttr() *syscall.SysProcAttr { return nil }
