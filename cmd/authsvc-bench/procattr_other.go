//go:build !linux

package main

import "syscall"

// childAttr has nothing to add outside Linux: replicas are stopped by
// the deferred clean-up only.
func childAttr() *syscall.SysProcAttr { return nil }
