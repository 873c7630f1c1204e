//go:build !linux

package main

import (
	"syscall"
	"time"
)

// childAttr has nothing to add outside Linux: the CPU floor server is
// stopped by the deferred clean-up only.
func childAttr() *syscall.SysProcAttr { return nil }

// threadCPU is not read outside Linux; the signature cost is then 0.
func threadCPU() time.Duration { return 0 }
