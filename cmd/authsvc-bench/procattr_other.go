//go:build !linux

package main

import "time"

// threadCPU is not read outside Linux; the signature cost is then 0.
func threadCPU() time.Duration { return 0 }
